/** `labor-llm score`: every person-year's log-probability of each outcome under a Llama (optionally + adapter). */
import { basename } from "node:path";
import { countPersonYears } from "../../data/panel.js";
import { loadLlamaWithAdapter } from "../../model/adapter.js";
import { loadLlama } from "../../model/load.js";
import { LlmScorer } from "../../score/llm-scorer.js";
import { predictionHeader } from "../../score/predictions.js";
import { JOURNAL_SUFFIX, scoreToFile } from "../../score/score-file.js";
import { mergePredictionShards, parseShard, type Shard } from "../../score/shards.js";
import { documentTemplate, TEMPLATE_NAMES } from "../../text/documents.js";
import { Tokenizer } from "../../text/tokenizer.js";
import { oneOf, optionalInteger, parseFlags, requireString, UsageError } from "../args.js";
import { BACKEND_FLAGS, BACKEND_HELP, backendFromFlags } from "../backend-flags.js";
import { loadPanelSplits, SPLIT_HELP, splitFlag } from "../panel-split.js";
import { ProgressBar } from "../progress.js";

export const SCORE_HELP = `labor-llm score --model DIR [--adapter DIR] --panel FILE --out predictions.jsonl [flags]
labor-llm score merge --out predictions.jsonl SHARD_FILE...

Writes one JSON line per person-year of the split: ids, year, demographics, previous and true outcome, and
the model's raw log-probability of every outcome's title (+ line terminator) after "{year} ({education}):"
(format: src/score/predictions.ts); an --out path ending in .bin gets the same content in a compact binary
layout (f32 log-probs, ~2.7× smaller; src/score/predictions-binary.ts), which \`labor-llm eval\` reads too.
Documents run once each; all candidates are scored against the shared prefix through a token trie (tree
attention). \`score merge\` joins the files of every shard of a run (--shard; any order, the layout of --out)
into exactly the file one run writes.
  --model DIR        HF Llama directory (config.json, safetensors, tokenizer.json)
  --adapter DIR      PEFT LoRA adapter merged into the model before scoring (the fine-tuned LLM)
  --panel FILE       panel (.csv or .jsonl)
${SPLIT_HELP}
  --template T       ${TEMPLATE_NAMES.join(" | ")} (default default; must match training)
  --name NAME        model name in the predictions header (default: the model/adapter directory name)
  --batch-rows N     query rows per pass through the layers (default 8192)
  --documents N      documents cached at once (default 8)
  --limit N          score only the first N people of the split
  --naive            one full forward per (person-year, candidate) instead (slow; for verification)
  --resume           continue an interrupted run (Ctrl-C, a crash, kill -9) from its last complete person
                     in OUT${JOURNAL_SUFFIX} (the journal a run keeps until it writes OUT); a torn last record is
                     discarded; the file equals an uninterrupted run's byte for byte. Starts afresh when there
                     is no journal, does nothing when OUT is already this run's. Without --resume, a journal
                     left by an interrupted run is an error (resume it or delete it)
  --shard I/N        score share I of N (1 ≤ I ≤ N): whole groups of --documents people, contiguous, balanced
                     by person-years; the header records the share. Same flags for every shard (--resume works)
${BACKEND_HELP}`;

export async function runScore(argv: string[]): Promise<number> {
  if (argv[0] === "merge") return runScoreMerge(argv.slice(1));
  const { values } = parseFlags(argv, {
    model: { type: "string" },
    adapter: { type: "string" },
    panel: { type: "string" },
    split: { type: "string" },
    splits: { type: "string" },
    out: { type: "string" },
    template: { type: "string" },
    name: { type: "string" },
    "batch-rows": { type: "string" },
    documents: { type: "string" },
    limit: { type: "string" },
    naive: { type: "boolean" },
    resume: { type: "boolean" },
    shard: { type: "string" },
    ...BACKEND_FLAGS,
  });
  if (values.help) {
    console.log(SCORE_HELP);
    return 0;
  }
  const modelDir = requireString(values, "model");
  const panelPath = requireString(values, "panel");
  const outPath = requireString(values, "out");
  const split = splitFlag(values);
  const templateName = oneOf(values, "template", TEMPLATE_NAMES, "default");
  const limit = optionalInteger(values, "limit", -1, 1);
  const adapterDir = typeof values.adapter === "string" ? values.adapter : undefined;
  const name = typeof values.name === "string" ? values.name : `llm:${basename(adapterDir ?? modelDir)}`;
  let shard: Shard | undefined;
  if (typeof values.shard === "string") {
    try {
      shard = parseShard(values.shard);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  }

  const splits = await loadPanelSplits(panelPath, typeof values.splits === "string" ? values.splits : undefined);
  let people = splits.pick(split);
  if (limit > 0) people = people.slice(0, limit);
  const backend = await backendFromFlags(values);
  const { model } = adapterDir ? loadLlamaWithAdapter(modelDir, adapterDir, backend) : loadLlama(modelDir, backend);
  const tokenizer = Tokenizer.fromDirectory(modelDir);
  const scorer = new LlmScorer(model, tokenizer, {
    template: documentTemplate(templateName),
    maxRows: optionalInteger(values, "batch-rows", 8192, 1),
    documentsPerGroup: optionalInteger(values, "documents", 8, 1),
  });

  // The header holds no timings: a resumed or sharded-and-merged run writes the same bytes as one run.
  const header = predictionHeader(name, scorer.taxonomy, false, {
    model: modelDir,
    adapter: adapterDir ?? null,
    template: templateName,
    panel: panelPath,
    split,
    path: values.naive ? "naive" : "prefix-shared",
    trieNodes: scorer.trie.nodeCount,
    candidateTokens: scorer.trie.unsharedTokenCount,
    backend: backend.describe(),
  });
  let bar: ProgressBar | undefined;
  let total = countPersonYears({ people });
  const started = performance.now();
  const result = await scoreToFile({
    scorer, people, outPath, header, shard, resume: values.resume === true, naive: values.naive === true,
    onResume: (resumed) => {
      const torn = resumed.tornBytes > 0 ? `; discarded a torn last record (${resumed.tornBytes} bytes)` : "";
      console.error(`resuming ${resumed.journal}: ${resumed.people} people (${resumed.personYears} person-years) already scored${torn}`);
      if (resumed.backendChanged) console.error(`note: the interrupted run used ${String(resumed.backendChanged.journal)}; this one ${String(resumed.backendChanged.now)} (the header keeps the first)`);
    },
    onProgress: (done) => {
      if (!bar) {
        bar = new ProgressBar(values.naive ? "score (naive)" : "score", total, " person-years");
        bar.resumeFrom(done);
      }
      bar.update(done);
    },
  });
  total = result.personYears;
  const share = shard ? `, shard ${shard.index}/${shard.count}: people ${result.first}..${result.end - 1} of ${people.length}` : "";
  if (result.alreadyComplete) {
    console.log(`${outPath} is already complete: ${result.personYears} person-years of ${result.people} people (${split}${share}); nothing to resume`);
    return 0;
  }
  bar?.finish();
  const seconds = (performance.now() - started) / 1000;
  const scored = result.personYears - result.resumedPersonYears;
  const resumed = result.resumedPeople > 0 ? `; ${result.resumedPeople} people resumed from ${outPath}${JOURNAL_SUFFIX}` : "";
  console.log(
    `wrote ${outPath}: ${result.personYears} person-years of ${result.people} people (${split}${share}), ${scorer.trie.candidates.length} candidates, ` +
      `${seconds.toFixed(1)} s (${(scored / seconds).toFixed(2)} person-years/s, ${values.naive ? "naive" : "prefix-shared"}; ${backend.describe()})${resumed}`,
  );
  return 0;
}

async function runScoreMerge(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, { out: { type: "string" } }, true);
  if (values.help) {
    console.log(SCORE_HELP);
    return 0;
  }
  const outPath = requireString(values, "out");
  if (positionals.length === 0) throw new UsageError("score merge: give every shard's predictions file after the flags");
  const result = await mergePredictionShards(positionals, outPath);
  for (const warning of result.warnings) console.error(`note: ${warning}`);
  console.log(`wrote ${outPath}: ${result.records} person-years from ${result.shards} shards`);
  return 0;
}
