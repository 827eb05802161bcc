import { readFileSync } from "node:fs";
import { loadLlama } from "../../model/load.js";
import { loadLlamaWithAdapter } from "../../model/adapter.js";
import { Tokenizer } from "../../text/tokenizer.js";
import { writeFileAtomic } from "../../io/atomic-write.js";
import { optionalInteger, parseFlags, requireString, UsageError } from "../args.js";
import { BACKEND_FLAGS, BACKEND_HELP, backendFromFlags } from "../backend-flags.js";
import { ProgressBar } from "../progress.js";

export const LOGPROBS_HELP = `labor-llm logprobs --model DIR --input FILE --out FILE.jsonl [flags]

For each input text, writes one JSON line {"line": N, "tokens": [...], "logprobs": [...]}: the token ids
(BOS first) and the natural-log probability of each token given the ones before it (the first is null).
  --input    a text file (one text per non-blank line) or a .jsonl file of {"text": "..."} objects
  --batch N  sequences evaluated together (default 8)
  --adapter DIR  a PEFT LoRA adapter (e.g. train's OUT/final) merged into the model on load
${BACKEND_HELP}`;

interface InputText {
  line: number;
  text: string;
}

export function readTexts(path: string): InputText[] {
  const content = readFileSync(path, "utf8");
  const lines = content.split(/\r?\n/);
  const texts: InputText[] = [];
  const jsonl = path.endsWith(".jsonl");
  lines.forEach((raw, index) => {
    if (raw.trim().length === 0) return;
    if (!jsonl) {
      texts.push({ line: index + 1, text: raw });
      return;
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch (error) {
      throw new Error(`${path}:${index + 1}: not valid JSON: ${(error as Error).message}`, { cause: error });
    }
    const text = (parsed as { text?: unknown } | null)?.text;
    if (typeof text !== "string") throw new Error(`${path}:${index + 1}: expected an object with a string "text" field`);
    texts.push({ line: index + 1, text });
  });
  return texts;
}

export async function runLogprobs(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    model: { type: "string" },
    adapter: { type: "string" },
    input: { type: "string" },
    out: { type: "string" },
    batch: { type: "string" },
    ...BACKEND_FLAGS,
  });
  if (values.help) {
    console.log(LOGPROBS_HELP);
    return 0;
  }
  const modelDir = requireString(values, "model");
  const inputPath = requireString(values, "input");
  const outPath = requireString(values, "out");
  const batchSize = optionalInteger(values, "batch", 8, 1);
  const backend = await backendFromFlags(values);
  const texts = readTexts(inputPath);
  if (texts.length === 0) throw new UsageError(`${inputPath}: no texts found`);

  const { model, config } = typeof values.adapter === "string" ? loadLlamaWithAdapter(modelDir, values.adapter, backend) : loadLlama(modelDir, backend);
  const tokenizer = Tokenizer.fromDirectory(modelDir);
  const encoded = texts.map(({ line, text }) => {
    const ids = tokenizer.encode(text, { addBos: true });
    if (ids.length > config.maxPositionEmbeddings) {
      throw new Error(`${inputPath}:${line}: ${ids.length} tokens exceed the model's context of ${config.maxPositionEmbeddings}`);
    }
    return ids;
  });
  const bar = new ProgressBar("logprobs", texts.length, " texts");
  const lines: string[] = [];
  for (let start = 0; start < encoded.length; start += batchSize) {
    const batch = encoded.slice(start, start + batchSize);
    const logprobs = await model.tokenLogprobs(batch);
    batch.forEach((ids, i) => {
      const values = Array.from(logprobs[i], (v, t) => (t === 0 ? null : v));
      lines.push(JSON.stringify({ line: texts[start + i].line, tokens: ids, logprobs: values }));
    });
    bar.update(Math.min(start + batchSize, encoded.length));
  }
  bar.finish();
  writeFileAtomic(outPath, (sink) => sink.write(Buffer.from(lines.join("\n") + "\n", "utf8")));
  console.log(`wrote ${outPath} (${texts.length} texts, ${encoded.reduce((a, b) => a + b.length, 0)} tokens, ${backend.describe()})`);
  return 0;
}
