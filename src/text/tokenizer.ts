/**
 * Tokenizer wrapper: loads an HF `tokenizer.json` (+ optional `tokenizer_config.json`) through
 * `@huggingface/tokenizers` and exposes the few operations the rest of labor-llm needs, with BOS
 * handling made explicit instead of hidden in a post-processor.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";

/**
 * Which family a tokenizer.json belongs to; the GGUF exporter needs this to pick llama.cpp's tokenizer.
 * - `llama2-spm-bpe`: SentencePiece-derived BPE (Llama-1/2, Mistral-7B): "▁" for spaces, byte fallback.
 * - `llama3-bytelevel-bpe`: GPT-2 style byte-level BPE (Llama-3).
 */
export type TokenizerKind = "llama2-spm-bpe" | "llama3-bytelevel-bpe" | "other";

/** The subset of tokenizer.json fields we inspect (the file has many more). */
export interface TokenizerJson {
  model?: { type?: string; byte_fallback?: boolean; vocab?: Record<string, number> | unknown; merges?: unknown[] };
  normalizer?: { type?: string; [key: string]: unknown } | null;
  pre_tokenizer?: { type?: string; [key: string]: unknown } | null;
  post_processor?: { type?: string; [key: string]: unknown } | null;
  added_tokens?: { id: number; content: string; special?: boolean }[];
  [key: string]: unknown;
}

type Json = Record<string, unknown>;

/** Every component of a (possibly nested) Sequence normalizer / pre-tokenizer / processor. */
function flattenComponents(component: unknown): Json[] {
  if (component === null || typeof component !== "object") return [];
  const c = component as Json;
  const children = (c.normalizers ?? c.pretokenizers ?? c.processors ?? c.decoders) as unknown;
  if (c.type === "Sequence" && Array.isArray(children)) return children.flatMap(flattenComponents);
  return [c];
}

/** Classify a parsed tokenizer.json (see {@link TokenizerKind}). */
export function detectTokenizerKind(json: TokenizerJson): TokenizerKind {
  const model = json.model;
  if (!model || model.type !== "BPE") return "other";
  const pre = flattenComponents(json.pre_tokenizer);
  if (pre.some((p) => p.type === "ByteLevel")) return "llama3-bytelevel-bpe";
  const norms = flattenComponents(json.normalizer);
  const usesMetaspace =
    norms.some((n) => n.type === "Prepend" && n.prepend === "▁") ||
    norms.some((n) => n.type === "Replace" && n.content === "▁") ||
    pre.some((p) => p.type === "Metaspace");
  if (usesMetaspace && model.byte_fallback === true) return "llama2-spm-bpe";
  return "other";
}

/** Token string from a tokenizer_config.json entry, which may be a string or an AddedToken object. */
function specialTokenContent(value: unknown): string | null {
  if (typeof value === "string") return value;
  if (value && typeof value === "object" && typeof (value as Json).content === "string") return (value as Json).content as string;
  return null;
}

/** Special token contents named by the TemplateProcessing post-processor's `single` template, in order. */
function templateSpecialTokens(postProcessor: unknown): { leading: string[] } {
  const leading: string[] = [];
  for (const proc of flattenComponents(postProcessor)) {
    if (proc.type !== "TemplateProcessing" || !Array.isArray(proc.single)) continue;
    for (const piece of proc.single as Json[]) {
      if (piece.Sequence) break;
      const special = piece.SpecialToken as Json | undefined;
      if (special && typeof special.id === "string") leading.push(special.id);
    }
  }
  return { leading };
}

function readJsonFile(path: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new Error(`${what}: cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${what}: ${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** Options of {@link Tokenizer.encode}. */
export interface EncodeOptions {
  /** Prepend the BOS token. Default: the tokenizer's own convention (tokenizer_config `add_bos_token`). */
  addBos?: boolean;
}

/** A loaded HF tokenizer. */
export class Tokenizer {
  readonly kind: TokenizerKind;
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  /** Whether {@link encode} adds BOS when not told otherwise. */
  readonly addBosByDefault: boolean;
  /** The parsed tokenizer.json (the GGUF exporter reads vocab and merges from it). */
  readonly json: TokenizerJson;
  /** The parsed tokenizer_config.json, or null when absent. */
  readonly config: Json | null;
  private readonly hf: HfTokenizer;
  private readonly cleanUpSpaces: boolean;

  /**
   * @param json parsed tokenizer.json
   * @param config parsed tokenizer_config.json, if any
   * @param source file name used in error messages
   */
  constructor(json: unknown, config: unknown = null, source = "tokenizer.json") {
    if (json === null || typeof json !== "object" || Array.isArray(json)) {
      throw new Error(`${source}: expected a JSON object`);
    }
    const tj = json as TokenizerJson;
    if (!tj.model || typeof tj.model !== "object" || tj.model.vocab === undefined) {
      throw new Error(`${source}: missing "model.vocab" (not an HF tokenizers file?)`);
    }
    if (tj.model.type === "BPE" && !Array.isArray(tj.model.merges)) {
      throw new Error(`${source}: BPE model without a "model.merges" list`);
    }
    const cfg = config && typeof config === "object" ? (config as Json) : null;
    // tokenizers.js iterates added_tokens unconditionally; an absent list is legal in tokenizer.json.
    const normalized: TokenizerJson = { ...tj, added_tokens: tj.added_tokens ?? [] };
    try {
      this.hf = new HfTokenizer(normalized, cfg ?? {});
    } catch (err) {
      throw new Error(`${source}: cannot build tokenizer: ${(err as Error).message}`, { cause: err });
    }
    this.json = tj;
    this.config = cfg;
    this.kind = detectTokenizerKind(tj);
    this.vocabSize = this.hf.get_vocab(true).size;

    const idOf = (content: string | null) => (content === null ? null : (this.hf.token_to_id(content) ?? null));
    const template = templateSpecialTokens(tj.post_processor);
    this.bosId =
      idOf(specialTokenContent(cfg?.bos_token)) ??
      idOf(template.leading[0] ?? null) ??
      idOf(this.kind === "llama3-bytelevel-bpe" ? "<|begin_of_text|>" : "<s>");
    this.eosId =
      idOf(specialTokenContent(cfg?.eos_token)) ??
      idOf(this.kind === "llama3-bytelevel-bpe" ? "<|end_of_text|>" : "</s>");
    // tokenizer_config's add_bos_token wins (LlamaTokenizerFast rebuilds its template from it); otherwise
    // the template in tokenizer.json decides.
    this.addBosByDefault =
      typeof cfg?.add_bos_token === "boolean" ? cfg.add_bos_token : this.bosId !== null && template.leading.length > 0;
    // HF defaults clean_up_tokenization_spaces to true, which rewrites " ." to "." and breaks round trips;
    // Llama tokenizers ship false, so default to false unless the config asks for it.
    this.cleanUpSpaces = cfg?.clean_up_tokenization_spaces === true;
  }

  /**
   * Load `tokenizer.json` (required) and `tokenizer_config.json` (optional) from a model directory.
   * Errors name the file that is missing or malformed.
   */
  static fromDirectory(dir: string): Tokenizer {
    const jsonPath = join(dir, "tokenizer.json");
    const json = readJsonFile(jsonPath, "tokenizer");
    const configPath = join(dir, "tokenizer_config.json");
    const config = existsSync(configPath) ? readJsonFile(configPath, "tokenizer config") : null;
    return new Tokenizer(json, config, jsonPath);
  }

  /** Token ids of `text`, with BOS prepended when `addBos` (default {@link addBosByDefault}). */
  encode(text: string, options: EncodeOptions = {}): number[] {
    // Encode without the post-processor and add BOS ourselves, so one flag means the same thing for every
    // tokenizer family (templates differ: Llama-2 `<s>`, Llama-3 `<|begin_of_text|>`).
    const ids = this.hf.encode(text, { add_special_tokens: false }).ids;
    const addBos = options.addBos ?? this.addBosByDefault;
    if (addBos) {
      if (this.bosId === null) throw new Error("tokenizer has no BOS token, cannot encode with addBos");
      return [this.bosId, ...ids];
    }
    return ids;
  }

  /** Text of `ids`. Special tokens (BOS/EOS/…) are skipped unless `keepSpecial`. */
  decode(ids: readonly number[], keepSpecial = false): string {
    if (ids.length === 0) return "";
    return this.hf.decode(ids.slice(), {
      skip_special_tokens: !keepSpecial,
      clean_up_tokenization_spaces: this.cleanUpSpaces,
    });
  }

  /** Id of a token string, or undefined. */
  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  /** Token string of an id, or undefined. */
  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id);
  }
}
