/**
 * `labor-llm demo`: the main job. Today it runs the parts of the pipeline that exist — create a foundation
 * Llama, verify it loads, score resume-style documents token by token — and names the stages still to come
 * (synthetic panels, pretraining, LoRA fine-tuning, next-occupation scoring, baselines) instead of faking them.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { initModel } from "../../model/init.js";
import { MODEL_PRESETS, presetNames } from "../../model/presets.js";
import { loadLlama } from "../../model/load.js";
import { Tokenizer } from "../../text/tokenizer.js";
import { oneOf, optionalInteger, parseFlags } from "../args.js";
import { BACKEND_FLAGS, BACKEND_HELP, backendFromFlags } from "../backend-flags.js";
import { formatSeconds } from "../progress.js";

export const DEMO_HELP = `labor-llm demo [--out DIR] [--model-preset NAME] [--seed N] [--fresh] [backend flags]

Runs the pipeline end to end on built-in data, as far as it is built:
  1. creates a random-initialised foundation Llama (HF layout) in DIR/foundation
  2. loads it back through the engine and scores resume documents token by token
Still to come (open issues): synthetic survey panels, pretraining on resumes, LoRA fine-tuning,
next-occupation scoring, baselines and the comparison table.
  --out DIR            working directory (default ./labor-llm-demo)
  --model-preset NAME  ${presetNames().join(", ")} (default tiny)
  --seed N             seed (default 0)
  --fresh              start over instead of reusing finished steps
${BACKEND_HELP}`;

/** Resume-style documents in the default template of MISSION.md. */
export const EXAMPLE_DOCUMENTS = [
  [
    "<A worker from the NLSY79 dataset>",
    "The following information is available about the work history of a female black US worker residing in the south region.",
    "The worker was born in 1961.",
    "The worker has the following records of work experience, one entry per line, including year, education level, and the job title:",
    "1979 (high school diploma): Cashiers",
    "1980 (high school diploma): Not in labor force",
    "1981 (some college): Secretaries",
    "<END OF DATA>",
  ].join("\n"),
  [
    "<A worker from the NLSY97 dataset>",
    "The following information is available about the work history of a male hispanic US worker residing in the west region.",
    "The worker was born in 1982.",
    "The worker has the following records of work experience, one entry per line, including year, education level, and the job title:",
    "2000 (high school diploma): Cooks",
    "2001 (some college): Cooks",
    "2002 (some college): Unemployed",
    "2003 (bachelor's degree): Accountants and auditors",
    "<END OF DATA>",
  ].join("\n"),
];

export async function runDemo(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    out: { type: "string" },
    "model-preset": { type: "string" },
    seed: { type: "string" },
    fresh: { type: "boolean" },
    ...BACKEND_FLAGS,
  });
  if (values.help) {
    console.log(DEMO_HELP);
    return 0;
  }
  const started = Date.now();
  const outDir = typeof values.out === "string" ? values.out : "labor-llm-demo";
  const preset = oneOf(values, "model-preset", presetNames(), "tiny");
  const seed = optionalInteger(values, "seed", 0);
  if (values.fresh) rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });

  const modelDir = join(outDir, "foundation", `${preset}-seed${seed}`);
  if (existsSync(join(modelDir, "model.safetensors"))) {
    console.log(`[1/2] foundation model: reusing ${modelDir}`);
  } else {
    console.log(`[1/2] foundation model: creating a random ${preset} Llama in ${modelDir}`);
    initModel({ config: MODEL_PRESETS[preset], seed, dtype: "f32", outDir: modelDir });
  }

  const backend = backendFromFlags(values);
  console.log(`[2/2] scoring ${EXAMPLE_DOCUMENTS.length} resume documents on ${backend.describe()}`);
  const { model } = loadLlama(modelDir, backend);
  const tokenizer = Tokenizer.fromDirectory(modelDir);
  const ids = EXAMPLE_DOCUMENTS.map((doc) => tokenizer.encode(doc, { addBos: true }));
  const logprobs = await model.tokenLogprobs(ids);
  const rows = ids.map((tokens, i) => {
    let sum = 0;
    for (let t = 1; t < tokens.length; t++) sum += logprobs[i][t];
    const perplexity = Math.exp(-sum / (tokens.length - 1));
    return { document: i + 1, tokens: tokens.length, perplexity };
  });
  writeFileSync(join(outDir, "document-perplexity.json"), JSON.stringify(rows, null, 2) + "\n");
  console.log("\n| document | tokens | per-token perplexity (untrained model) |");
  console.log("|---|---|---|");
  for (const r of rows) console.log(`| ${r.document} | ${r.tokens} | ${r.perplexity.toFixed(1)} |`);
  console.log(
    "\nNot built yet (see the open issues): synthetic panels, pretraining, LoRA fine-tuning, next-occupation" +
      " scoring, baselines, report.html.",
  );
  console.log(`done in ${formatSeconds((Date.now() - started) / 1000)}; outputs in ${outDir}`);
  return 0;
}
