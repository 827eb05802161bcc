/**
 * The Llama layers over an explicit list of query rows, for scoring: the caller says, per row, its token, its
 * RoPE position, the cache row its key/value is written to, and which cache rows it attends — a contiguous
 * range (plain causal attention, like {@link Llama.forward}) or a range plus an explicit key list (tree
 * attention through a candidate trie). Only the requested (row, token) log-probabilities are computed, so
 * rows that only feed the cache cost no logits.
 *
 * Same math as llama.ts per layer (HF semantics, y = x·Wᵀ):
 *   n = rms(x)·w_in;  q,k,v = n·Wqᵀ, n·Wkᵀ, n·Wvᵀ;  q,k ← RoPE;  (k,v) → cache rows
 *   x = x + attn(q, K_cache[attended rows], V_cache[attended rows])·Woᵀ
 *   m = rms(x)·w_post;  x = x + (silu(m·Wgateᵀ) ⊙ m·Wupᵀ)·Wdownᵀ
 * then log P(token | row) = log softmax(rms(x)·w_norm·Wlmᵀ)[token].
 */
import type { Tensor } from "../engine/backend.js";
import type { KvCache, Llama } from "./llama.js";
import { ropeInverseFrequencies } from "./rope.js";

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

/** Rows of logits materialised at once (bounds memory at this × vocab floats, twice). */
const LOGIT_CHUNK_ROWS = 256;

const invFreqCache = new WeakMap<Llama, Tensor>();

function inverseFrequencies(model: Llama): Tensor {
  let t = invFreqCache.get(model);
  if (!t) {
    t = model.backend.upload(ropeInverseFrequencies(model.config), "f32", [model.config.headDim / 2]);
    invFreqCache.set(model, t);
  }
  return t;
}

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
  const { backend: be, config: cfg, tensors: w } = model;
  check(request, cache, cfg.vocabSize);
  const total = request.ids.length;
  const gatherCount = request.gatherRows?.length ?? 0;
  if (total === 0) return new Float32Array(0);
  const invFreq = inverseFrequencies(model);

  const d = cfg.hiddenSize;
  const qWidth = cfg.numHeads * cfg.headDim;
  const kvWidth = cfg.numKvHeads * cfg.headDim;
  const temporaries: Tensor[] = [];
  const alloc = (shape: number[]): Tensor => {
    const t = be.alloc("f32", shape);
    temporaries.push(t);
    return t;
  };
  const upload = (data: Int32Array): Tensor => {
    const t = be.upload(data, "i32", [data.length]);
    temporaries.push(t);
    return t;
  };

  try {
    const idsT = upload(request.ids);
    const positionsT = upload(request.positions);
    const cacheRowsT = upload(request.cacheRows);
    const keyStartT = upload(request.keyStart);
    const keyEndT = upload(request.keyEnd);
    const extraOffsetsT = request.tree ? upload(request.tree.extraOffsets) : undefined;
    // An empty tensor is still a tensor: give the backend one element it will never read.
    const extraKeysT = request.tree ? upload(request.tree.extraKeys.length > 0 ? request.tree.extraKeys : new Int32Array(1)) : undefined;

    const x = alloc([total, d]);
    const normed = alloc([total, d]);
    const q = alloc([total, qWidth]);
    const k = alloc([total, kvWidth]);
    const v = alloc([total, kvWidth]);
    const attended = alloc([total, qWidth]);
    const projected = alloc([total, d]);
    const gate = alloc([total, cfg.intermediateSize]);
    const up = alloc([total, cfg.intermediateSize]);
    const q3 = be.reshape(q, [total, cfg.numHeads, cfg.headDim]);
    const k3 = be.reshape(k, [total, cfg.numKvHeads, cfg.headDim]);
    const attended3 = be.reshape(attended, [total, cfg.numHeads, cfg.headDim]);
    const transB = { transB: true };
    const scale = 1 / Math.sqrt(cfg.headDim);
    const cacheTotal = cache.keys[0].shape[0];

    be.embedding(idsT, w.embedTokens, x);
    w.layers.forEach((layer, index) => {
      be.rmsnorm(x, layer.inputNorm, cfg.rmsNormEps, normed);
      be.matmul(normed, layer.q, q, transB);
      be.matmul(normed, layer.k, k, transB);
      be.matmul(normed, layer.v, v, transB);
      be.rope(q3, positionsT, invFreq, q3);
      be.rope(k3, positionsT, invFreq, k3);
      be.scatterRows(k, cacheRowsT, cache.keys[index]);
      be.scatterRows(v, cacheRowsT, cache.values[index]);
      const keys = be.reshape(cache.keys[index], [cacheTotal, cfg.numKvHeads, cfg.headDim]);
      const values = be.reshape(cache.values[index], [cacheTotal, cfg.numKvHeads, cfg.headDim]);
      if (extraOffsetsT && extraKeysT) {
        be.treeAttention(q3, keys, values, keyStartT, keyEndT, extraOffsetsT, extraKeysT, scale, attended3);
      } else {
        be.attention(q3, keys, values, keyStartT, keyEndT, scale, attended3);
      }
      be.matmul(attended, layer.o, projected, transB);
      be.add(x, projected, x);
      be.rmsnorm(x, layer.postNorm, cfg.rmsNormEps, normed);
      be.matmul(normed, layer.gate, gate, transB);
      be.matmul(normed, layer.up, up, transB);
      be.swiglu(gate, up, gate);
      be.matmul(gate, layer.down, projected, transB);
      be.add(x, projected, x);
    });
    if (gatherCount === 0) return new Float32Array(0);
    be.rmsnorm(x, w.norm, cfg.rmsNormEps, normed);
    return await gatherLogprobs(model, normed, request.gatherRows!, request.gatherTokens!, temporaries);
  } finally {
    for (const t of temporaries) be.free(t);
  }
}

/**
 * log softmax(normed[row]·Wlmᵀ)[token] for each requested pair. Distinct rows are processed in chunks:
 * gather the chunk's hidden rows (embedding over the hidden-state table), logits = rows·Wlmᵀ, then per row
 * only the normaliser: logSoftmaxGather at the row's first wanted token gives lp = z[first] − lse, so
 * lse = z[first] − lp, and every wanted pair is z[token] − lse from the raw logits (gathered by flat index,
 * embedding over the [rows·vocab, 1] view). The normalised row is never written back.
 */
async function gatherLogprobs(model: Llama, normed: Tensor, rows: Int32Array, tokens: Int32Array, temporaries: Tensor[]): Promise<Float32Array> {
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
  const selected = be.alloc("f32", [chunkRows, d]);
  temporaries.push(selected);
  const logits = be.alloc("f32", [chunkRows, vocab]);
  temporaries.push(logits);
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
