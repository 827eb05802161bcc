/** `labor-llm score`: every person-year's log-probability of each outcome under a Llama (optionally + adapter). */
import { basename } from "node:path";
import { countPersonYears } from "../../data/panel.js";
import { loadLlamaWithAdapter } from "../../model/adapter.js";
import { loadLlama } from "../../model/load.js";
import { LlmScorer } from "../../score/llm-scorer.js";
import { predictionHeader, predictionRecords, writePredictions } from "../../score/predictions.js";
import { documentTemplate, TEMPLATE_NAMES } from "../../text/documents.js";
import { Tokenizer } from "../../text/tokenizer.js";
import { oneOf, optionalInteger, parseFlags, requireString } from "../args.js";
import { BACKEND_FLAGS, BACKEND_HELP, backendFromFlags } from "../backend-flags.js";
import { loadPanelSplits, SPLIT_HELP, splitFlag } from "../panel-split.js";
import { ProgressBar } from "../progress.js";

export const SCORE_HELP = `labor-llm score --model DIR [--adapter DIR] --panel FILE --out predictions.jsonl [flags]

Writes one JSON line per person-year of the split: ids, year, demographics, previous and true outcome, and
the model's raw log-probability of every outcome's title (+ line terminator) after "{year} ({education}):"
(format: src/score/predictions.ts); an --out path ending in .bin gets the same content in a compact binary
layout (f32 log-probs, ~2.7× smaller; src/score/predictions-binary.ts), which \`labor-llm eval\` reads too.
Documents run once each; all candidates are scored against the shared prefix through a token trie (tree
attention).
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
${BACKEND_HELP}`;

export async function runScore(argv: string[]): Promise<number> {
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

  const personYears = countPersonYears({ people });
  const bar = new ProgressBar(values.naive ? "score (naive)" : "score", personYears, " person-years");
  const started = performance.now();
  const logProbs = values.naive ? await scorer.scorePeopleNaive(people, (done) => bar.update(done)) : await scorer.scorePeople(people, (done) => bar.update(done));
  const seconds = (performance.now() - started) / 1000;
  bar.finish();
  const header = predictionHeader(name, scorer.taxonomy, false, {
    model: modelDir,
    adapter: adapterDir ?? null,
    template: templateName,
    panel: panelPath,
    split,
    path: values.naive ? "naive" : "prefix-shared",
    trieNodes: scorer.trie.nodeCount,
    candidateTokens: scorer.trie.unsharedTokenCount,
    seconds,
    backend: backend.describe(),
  });
  writePredictions(outPath, header, predictionRecords(people, logProbs));
  console.log(
    `wrote ${outPath}: ${personYears} person-years of ${people.length} people (${split}), ${scorer.trie.candidates.length} candidates, ` +
      `${seconds.toFixed(1)} s (${(personYears / seconds).toFixed(2)} person-years/s, ${values.naive ? "naive" : "prefix-shared"}; ${backend.describe()})`,
  );
  return 0;
}
