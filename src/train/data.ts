/**
 * Training documents from JSONL (what `labor-llm data textify` writes, or any {"text": ...} lines) to token
 * sequences with loss masks. A record with "token_ids" is used as tokenized (its targets' token_start /
 * token_end give the target spans); otherwise "text" is tokenized with the model's tokenizer (BOS first)
 * and the targets' char_start / char_end are placed on token boundaries (src/text/documents.ts).
 * Loss "all": every token but the first; "targets": only the tokens of the prediction targets.
 */
import { readFileSync } from "node:fs";
import { lossMask, tokenizeDocument, TokenOffsets, type LossMaskMode, type TextTokenizer, type TokenizedDocument } from "../text/documents.js";
import type { TrainingSequence } from "./batches.js";

interface RawTarget {
  year?: unknown;
  outcome?: unknown;
  char_start?: unknown;
  char_end?: unknown;
  token_start?: unknown;
  token_end?: unknown;
}

/** Read a documents JSONL file; errors name file:line. */
export function readTrainingSequences(path: string, tokenizer: TextTokenizer, mode: LossMaskMode, vocabSize: number): TrainingSequence[] {
  const lines = readFileSync(path, "utf8").split(/\r?\n/);
  const offsets = new TokenOffsets(tokenizer);
  const out: TrainingSequence[] = [];
  lines.forEach((line, index) => {
    if (line.trim() === "") return;
    const where = `${path}:${index + 1}`;
    let record: Record<string, unknown>;
    try {
      record = JSON.parse(line) as Record<string, unknown>;
    } catch (error) {
      throw new Error(`${where}: not valid JSON: ${(error as Error).message}`, { cause: error });
    }
    if (typeof record !== "object" || record === null || Array.isArray(record)) throw new Error(`${where}: expected a JSON object`);
    const targets = (Array.isArray(record.targets) ? record.targets : []) as RawTarget[];
    let document: TokenizedDocument;
    if (Array.isArray(record.token_ids)) {
      const ids = record.token_ids as unknown[];
      if (!ids.every((id) => Number.isInteger(id) && (id as number) >= 0 && (id as number) < vocabSize)) {
        throw new Error(`${where}: token_ids must be integers in [0, ${vocabSize})`);
      }
      const spans = targets.map((t, i) => {
        if (!Number.isInteger(t.token_start) || !Number.isInteger(t.token_end)) {
          throw new Error(`${where}: target ${i} has no token_start/token_end (textify with --tokenizer, or drop token_ids)`);
        }
        return { year: Number(t.year), outcome: Number(t.outcome), charStart: 0, charEnd: 0, tokenStart: t.token_start as number, tokenEnd: t.token_end as number };
      });
      document = { personId: String(record.person_id ?? index + 1), dataset: "", text: "", ids: ids as number[], targets: spans };
    } else {
      if (typeof record.text !== "string") throw new Error(`${where}: expected "token_ids" or a string "text"`);
      const charTargets = targets.map((t, i) => {
        if (!Number.isInteger(t.char_start) || !Number.isInteger(t.char_end)) throw new Error(`${where}: target ${i} has no char_start/char_end`);
        return { year: Number(t.year), outcome: Number(t.outcome), charStart: t.char_start as number, charEnd: t.char_end as number };
      });
      try {
        document = tokenizeDocument({ personId: String(record.person_id ?? index + 1), dataset: "", text: record.text, targets: charTargets }, tokenizer, { offsets });
      } catch (error) {
        throw new Error(`${where}: ${(error as Error).message}`, { cause: error });
      }
    }
    if (mode === "targets" && document.targets.length === 0) throw new Error(`${where}: --loss targets needs "targets" in every document`);
    out.push({ ids: Int32Array.from(document.ids), lossMask: lossMask(document, mode) });
  });
  if (out.length === 0) throw new Error(`${path}: no documents`);
  return out;
}
