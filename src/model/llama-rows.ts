/**
 * The Llama layers over an explicit list of query rows, for scoring: the caller says, per row, its token, its
 * RoPE position, the cache row its key/value is written to, and which cache rows it attends — a contiguous
 * range (plain causal attention, like {@link Llama.forward}) or a range plus an explicit key list (tree
 * attention through a candidate trie). Only the requested (row, token) log-probabilities are computed, so
 * rows that only feed the cache cost no logits.
 *
 * The layers are llama.ts's decoderLayers (only the attention differs); per layer (HF semantics, y = x·Wᵀ):
 *   n = rms(x)·w_in;  q,k,v = n·Wqᵀ, n·Wkᵀ, n·Wvᵀ;  q,k ← RoPE;  (k,v) → cache rows
 *   x = x + attn(q, K_cache[attended rows], V_cache[attended rows])·Woᵀ
 *   m = rms(x)·w_post;  x = x + (silu(m·Wgateᵀ) ⊙ m·Wupᵀ)·Wdownᵀ
 * then log P(token | row) = log softmax(rms(x)·w_norm·Wlmᵀ)[token].
 */
import type { Tensor } from "../engine/backend.js";
import { decoderLayers, PassTensors, type KvCache, type Llama } from "./llama.js";

export interface RowForwardRequest {
  /** Token id of each query row. */
  ids: Int32Array;
  /** RoPE position of each row. */
  positions: Int32Array;
  /** Cache row that receives each row's key and value (written before attention, so a row sees itself). */
  cacheRows: Int32Array;
  /** Each row attends cache rows [keyStart, keyEnd) … */
  keyStart: Int32Array;
  keyEnd: Int32Array;
  /** … plus, when given, cache rows extraKeys[extraOffsets[r] .. extraOffsets[r+1]) (tree attention). */
  tree?: { extraOffsets: Int32Array; extraKeys: Int32Array };
  /** Log-probabilities to return: log P(gatherTokens[i] | output of row gatherRows[i]). */
  gatherRows?: Int32Array;
  gatherTokens?: Int32Array;
}

/**
 * Rows of logits materialised at once (bounds memory at this × vocab floats, twice). 96 rows (whole 48- and
 * 24-row strips of the CPU kernels) scored the demo model ~10 % faster than 256 on AVX-512 and AVX2: the chunk's
 * logits (12 MB at a 32k vocab) are still in cache when logSoftmaxGather reads them back.
 */
const LOGIT_CHUNK_ROWS = 96;

function check(request: RowForwardRequest, cache: KvCache, vocab: number): void {
  const rows = request.ids.length;
  const cacheRows = cache.keys[0].shape[0];
  for (const [name, array] of [["positions", request.positions], ["cacheRows", request.cacheRows], ["keyStart", request.keyStart], ["keyEnd", request.keyEnd]] as const) {
    if (array.length !== rows) throw new Error(`forwardRows: ${name} has ${array.length} entries for ${rows} rows`);
  }
  for (let r = 0; r < rows; r++) {
    if (request.ids[r] < 0 || request.ids[r] >= vocab) throw new Error(`forwardRows: row ${r} has token ${request.ids[r]}, outside [0, ${vocab})`);
    if (request.cacheRows[r] < 0 || request.cacheRows[r] >= cacheRows) throw new Error(`forwardRows: row ${r} writes cache row ${request.cacheRows[r]}, cache has ${cacheRows}`);
    if (request.keyStart[r] < 0 || request.keyEnd[r] > cacheRows || request.keyStart[r] > request.keyEnd[r]) {
      throw new Error(`forwardRows: row ${r} attends [${request.keyStart[r]}, ${request.keyEnd[r]}), cache has ${cacheRows} rows`);
    }
  }
  if (request.tree) {
    const { extraOffsets, extraKeys } = request.tree;
    if (extraOffsets.length !== rows + 1 || extraOffsets[0] !== 0 || extraOffsets[rows] !== extraKeys.length) {
      throw new Error(`forwardRows: extraOffsets must have ${rows + 1} entries from 0 to ${extraKeys.length}`);
    }
    for (const key of extraKeys) if (key < 0 || key >= cacheRows) throw new Error(`forwardRows: extra key ${key} outside the cache's ${cacheRows} rows`);
  }
  const gatherRows = request.gatherRows ?? new Int32Array(0);
  const gatherTokens = request.gatherTokens ?? new Int32Array(0);
  if (gatherRows.length !== gatherTokens.length) throw new Error(`forwardRows: ${gatherRows.length} gather rows but ${gatherTokens.length} tokens`);
  for (let i = 0; i < gatherRows.length; i++) {
    if (gatherRows[i] < 0 || gatherRows[i] >= rows) throw new Error(`forwardRows: gather row ${gatherRows[i]} outside [0, ${rows})`);
    if (gatherTokens[i] < 0 || gatherTokens[i] >= vocab) throw new Error(`forwardRows: gather token ${gatherTokens[i]} outside [0, ${vocab})`);
  }
}

/**
 * Run the rows through every layer (writing their keys/values into `cache`) and return the requested
 * log-probabilities, in request order (empty when none are asked for).
 */
export async function forwardRows(model: Llama, cache: KvCache, request: RowForwardRequest): Promise<Float32Array> {
  const { backend: be, config: cfg } = model;
  check(request, cache, cfg.vocabSize);
  const total = request.ids.length;
  const gatherCount = request.gatherRows?.length ?? 0;
  if (total === 0) return new Float32Array(0);
  const pass = new PassTensors(be);
  try {
    const rows = { ids: pass.upload(request.ids), positions: pass.upload(request.positions), cacheRows: pass.upload(request.cacheRows) };
    const keyStartT = pass.upload(request.keyStart);
    const keyEndT = pass.upload(request.keyEnd);
    const extraOffsetsT = request.tree ? pass.upload(request.tree.extraOffsets) : undefined;
    // An empty tensor is still a tensor: give the backend one element it will never read.
    const extraKeysT = request.tree ? pass.upload(request.tree.extraKeys.length > 0 ? request.tree.extraKeys : new Int32Array(1)) : undefined;
    const scale = 1 / Math.sqrt(cfg.headDim);
    // The MLP runs over every row at once (scoring batches are bounded by their caller).
    const normed = decoderLayers(model, rows, total, cache, total, pass, (q3, keys3, values3, out3) => {
      if (extraOffsetsT && extraKeysT) {
        be.treeAttention(q3, keys3, values3, keyStartT, keyEndT, extraOffsetsT, extraKeysT, scale, out3);
      } else {
        be.attention(q3, keys3, values3, keyStartT, keyEndT, scale, out3);
      }
    });
    if (gatherCount === 0) return new Float32Array(0);
    return await gatherLogprobs(model, normed, request.gatherRows!, request.gatherTokens!, pass);
  } finally {
    pass.free();
  }
}

/**
 * log softmax(normed[row]·Wlmᵀ)[token] for each requested pair. Distinct rows are processed in chunks:
 * gather the chunk's hidden rows (embedding over the hidden-state table), logits = rows·Wlmᵀ, then per row
 * only the normaliser: logSoftmaxGather at the row's first wanted token gives lp = z[first] − lse, so
 * lse = z[first] − lp, and every wanted pair is z[token] − lse from the raw logits (gathered by flat index,
 * embedding over the [rows·vocab, 1] view). The normalised row is never written back.
 */
async function gatherLogprobs(model: Llama, normed: Tensor, rows: Int32Array, tokens: Int32Array, pass: PassTensors): Promise<Float32Array> {
  const be = model.backend;
  const vocab = model.config.vocabSize;
  const d = model.config.hiddenSize;
  const order = Array.from(rows.keys()).sort((a, b) => rows[a] - rows[b]);
  const distinct: number[] = [];
  const firstToken: number[] = [];
  for (const i of order) {
    if (distinct.length === 0 || distinct[distinct.length - 1] !== rows[i]) {
      distinct.push(rows[i]);
      firstToken.push(tokens[i]);
    }
  }
  const chunkRows = Math.min(LOGIT_CHUNK_ROWS, distinct.length);
  const selected = pass.alloc([chunkRows, d]);
  const logits = pass.alloc([chunkRows, vocab]);
  const out = new Float32Array(rows.length);
  let pair = 0;
  for (let start = 0; start < distinct.length; start += chunkRows) {
    const count = Math.min(chunkRows, distinct.length - start);
    const localOf = new Map<number, number>();
    for (let i = 0; i < count; i++) localOf.set(distinct[start + i], i);
    const pairs: number[] = [];
    while (pair < order.length && localOf.has(rows[order[pair]])) pairs.push(order[pair++]);
    const rowIds = be.upload(Int32Array.from(distinct.slice(start, start + count)), "i32", [count]);
    const firstIds = be.upload(Int32Array.from(firstToken.slice(start, start + count)), "i32", [count]);
    const firstFlat = be.upload(Int32Array.from(firstToken.slice(start, start + count), (token, i) => i * vocab + token), "i32", [count]);
    const flat = be.upload(Int32Array.from(pairs, (p) => localOf.get(rows[p])! * vocab + tokens[p]), "i32", [pairs.length]);
    const firstLogprob = be.alloc("f32", [count]);
    const firstLogit = be.alloc("f32", [count, 1]);
    const gathered = be.alloc("f32", [pairs.length, 1]);
    try {
      const chunkSelected = be.sliceRows(selected, 0, count);
      const chunkLogits = be.sliceRows(logits, 0, count);
      const flatLogits = be.reshape(chunkLogits, [count * vocab, 1]);
      be.embedding(rowIds, normed, chunkSelected);
      be.matmul(chunkSelected, model.tensors.lmHead, chunkLogits, { transB: true });
      be.logSoftmaxGather(chunkLogits, firstIds, firstLogprob);
      be.embedding(firstFlat, flatLogits, firstLogit);
      be.embedding(flat, flatLogits, gathered);
      const [lp, z, values] = await Promise.all([be.download(firstLogprob), be.download(firstLogit), be.download(gathered)]);
      const normaliser = Float64Array.from(lp, (value, i) => z[i] - value);
      pairs.forEach((p, i) => (out[p] = values[i] - normaliser[localOf.get(rows[p])!]));
    } finally {
      for (const t of [rowIds, firstIds, firstFlat, flat, firstLogprob, firstLogit, gathered]) be.free(t);
    }
  }
  return out;
}
