/**
 * A real Llama-2 `tokenizer.json` / `tokenizer_config.json`, rebuilt from the vocabulary and merges that
 * `llama-tokenizer-js` embeds (it was generated from Meta's HF tokenizer.json; see its data-conversion.py).
 *
 * Why rebuild instead of shipping the file: nothing can be downloaded at run time, and tests need the
 * genuine 32000-piece vocabulary to prove that our tokenizer wrapper and the GGUF tokenizer metadata
 * reproduce Llama-2 tokenization exactly.
 *
 * How llama-tokenizer-js stores its data: the vocabulary is one base64 string of pieces joined by "\n"
 * (line number = token id); the merges are base64 of little-endian u16 pairs (left id, right id) in rank
 * order. Its constructor decodes the merges into `Map<"left right", 2·rank + 1>`; we invert that map back
 * into the rank-ordered list HF ships. No piece contains a space, so splitting the key on " " is exact.
 */
import llamaTokenizer from "llama-tokenizer-js";

/** Ids of the three special tokens every Llama-1/2 SentencePiece vocabulary starts with. */
export const LLAMA2_UNK_ID = 0;
export const LLAMA2_BOS_ID = 1;
export const LLAMA2_EOS_ID = 2;
/** Number of pieces in the Llama-2 vocabulary. */
export const LLAMA2_VOCAB_SIZE = 32000;

function addedToken(id: number, content: string): object {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

/** The 32000 pieces by id and the 61249 merges in rank order, decoded from llama-tokenizer-js. */
function llama2VocabAndMerges(): { pieces: string[]; merges: string[] } {
  const pieces = llamaTokenizer.vocabById.slice();
  if (pieces.length !== LLAMA2_VOCAB_SIZE) {
    throw new Error(`llama-tokenizer-js: expected ${LLAMA2_VOCAB_SIZE} vocabulary pieces, found ${pieces.length}`);
  }
  // merges: "left right" -> 2·rank + 1 (the package spaces ranks by 2 to leave room for its tie-break bias).
  const merges = new Array<string>(llamaTokenizer.merges.size);
  for (const [pair, priority] of llamaTokenizer.merges) {
    const rank = (priority - 1) / 2;
    if (!Number.isInteger(rank) || rank < 0 || rank >= merges.length || merges[rank] !== undefined) {
      throw new Error(`llama-tokenizer-js: merge "${pair}" has unexpected priority ${priority}`);
    }
    merges[rank] = pair;
  }
  return { pieces, merges };
}

/**
 * Build the Llama-2 HF `tokenizer.json` (same structure as meta-llama/Llama-2-7b-hf's): BPE with byte
 * fallback, `Prepend("▁") + Replace(" ", "▁")` normalizer, no pre-tokenizer, SentencePiece-style decoder
 * and a template that adds `<s>`.
 */
export function buildLlama2TokenizerJson(): object {
  const { pieces, merges } = llama2VocabAndMerges();
  const vocab: Record<string, number> = {};
  pieces.forEach((piece, id) => {
    vocab[piece] = id;
  });
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [addedToken(LLAMA2_UNK_ID, "<unk>"), addedToken(LLAMA2_BOS_ID, "<s>"), addedToken(LLAMA2_EOS_ID, "</s>")],
    normalizer: {
      type: "Sequence",
      normalizers: [
        { type: "Prepend", prepend: "▁" },
        { type: "Replace", pattern: { String: " " }, content: "▁" },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: "<s>", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "<s>", type_id: 1 } },
        { Sequence: { id: "B", type_id: 1 } },
      ],
      special_tokens: { "<s>": { id: "<s>", ids: [LLAMA2_BOS_ID], tokens: ["<s>"] } },
    },
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: "▁" }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: "<unk>",
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      vocab,
      merges,
    },
  };
}

/**
 * Build the matching `tokenizer_config.json`. `legacy: true` because the tokenizer.json above encodes the
 * legacy SentencePiece behaviour (prefix space via the Prepend normalizer); `clean_up_tokenization_spaces`
 * is false as Meta ships it, so decode is an exact inverse of encode.
 */
export function buildLlama2TokenizerConfig(): object {
  const special = (content: string) => ({
    __type: "AddedToken",
    content,
    lstrip: false,
    normalized: false,
    rstrip: false,
    single_word: false,
  });
  return {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: special("<s>"),
    eos_token: special("</s>"),
    unk_token: special("<unk>"),
    pad_token: null,
    clean_up_tokenization_spaces: false,
    legacy: true,
    model_max_length: 4096,
    padding_side: "right",
    sp_model_kwargs: {},
    tokenizer_class: "LlamaTokenizer",
  };
}
