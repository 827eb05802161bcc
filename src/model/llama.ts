/**
 * The Llama forward pass over the Backend interface: batches of sequences of different lengths packed into
 * one token axis, per-token log-probabilities of given targets and/or logits, and a KV cache so a sequence
 * can be extended incrementally.
 *
 * Per layer (HF semantics, y = x·Wᵀ):
 *   n = rms(x) · w_in;  q,k,v = n·Wqᵀ, n·Wkᵀ, n·Wvᵀ;  q,k ← RoPE;  (k,v) → cache
 *   x = x + attn(q, K_cache, V_cache)·Woᵀ
 *   m = rms(x) · w_post;  x = x + (silu(m·Wgateᵀ) ⊙ m·Wupᵀ)·Wdownᵀ
 * then logits = rms(x) · w_norm · Wlmᵀ.
 */
import type { Backend, Tensor } from "../engine/backend.js";
import type { LlamaConfig } from "../io/llama-config.js";
import { ropeInverseFrequencies } from "./rope.js";
import { checkMemory, forwardActivationBytes, kvCacheBytes, tensorBytes } from "./memory.js";

export interface LlamaLayerTensors {
  inputNorm: Tensor;
  q: Tensor;
  k: Tensor;
  v: Tensor;
  o: Tensor;
  postNorm: Tensor;
  gate: Tensor;
  up: Tensor;
  down: Tensor;
}

export interface LlamaTensors {
  embedTokens: Tensor;
  layers: LlamaLayerTensors[];
  norm: Tensor;
  /** The same tensor as embedTokens when the embeddings are tied. */
  lmHead: Tensor;
}

/**
 * Keys and values of every layer for a fixed set of sequences. Sequence s owns cache rows
 * [base[s], base[s] + capacity[s]); `lengths[s]` tokens of it are filled.
 */
export class KvCache {
  readonly keys: Tensor[];
  readonly values: Tensor[];
  readonly base: number[];
  readonly capacities: number[];
  readonly lengths: number[];

  constructor(
    private readonly backend: Backend,
    config: LlamaConfig,
    capacities: readonly number[],
  ) {
    for (const c of capacities) {
      if (!Number.isInteger(c) || c <= 0) throw new Error(`KvCache: capacity ${c} must be a positive integer`);
    }
    this.capacities = [...capacities];
    this.lengths = capacities.map(() => 0);
    this.base = [];
    let total = 0;
    for (const c of capacities) {
      this.base.push(total);
      total += c;
    }
    const width = config.numKvHeads * config.headDim;
    this.keys = [];
    this.values = [];
    for (let layer = 0; layer < config.numLayers; layer++) {
      this.keys.push(backend.alloc("f32", [total, width]));
      this.values.push(backend.alloc("f32", [total, width]));
    }
  }

  get sequenceCount(): number {
    return this.capacities.length;
  }

  /** Forget sequence s (its rows are reused from position 0). */
  reset(sequence: number): void {
    this.lengths[sequence] = 0;
  }

  free(): void {
    for (const t of [...this.keys, ...this.values]) this.backend.free(t);
  }
}

export interface ForwardRequest {
  /** New tokens of each sequence (one entry per cache sequence; empty arrays allowed). */
  tokens: readonly (readonly number[])[];
  /**
   * Per new token, the id whose log-probability to return (−1: none). Usually the next token of the text.
   * When given, `logprobs` of the result holds one value per new token (NaN where the target was −1).
   */
  targets?: readonly (readonly number[])[];
  /** Also return the full logits [tokens, vocab] of each sequence (memory: tokens × vocab × 4 bytes). */
  wantLogits?: boolean;
}

export interface ForwardResult {
  logprobs?: Float32Array[];
  logits?: Float32Array[];
}

/** Rows of the MLP's intermediate activations materialised at once (2 × rows × intermediateSize floats). */
const MLP_CHUNK_ROWS = 1024;

/** Rows of logits materialised at once: bounds memory at LOGIT_CHUNK_ROWS × vocab floats. */
const LOGIT_CHUNK_ROWS = 128;

/** The tensors one pass makes, freed together (free() in a finally). */
export class PassTensors {
  private readonly tensors: Tensor[] = [];

  constructor(private readonly backend: Backend) {}

  /** An f32 tensor of `shape`. */
  alloc(shape: readonly number[]): Tensor {
    return this.track(this.backend.alloc("f32", shape));
  }

  /** An i32 tensor holding `data`. */
  upload(data: Int32Array): Tensor {
    return this.track(this.backend.upload(data, "i32", [data.length]));
  }

  track(t: Tensor): Tensor {
    this.tensors.push(t);
    return t;
  }

  free(): void {
    for (const t of this.tensors) this.backend.free(t);
    this.tensors.length = 0;
  }
}

/** How one layer's queries attend the cache: out3 = attention of q3 over keys3/values3 (the whole cache). */
export type AttendCache = (q3: Tensor, keys3: Tensor, values3: Tensor, out3: Tensor) => void;

/** The packed rows of one forward pass, as i32 tensors: token ids, RoPE positions, the cache rows written. */
export interface DecoderRows {
  ids: Tensor;
  positions: Tensor;
  cacheRows: Tensor;
}

/**
 * Embedding, every decoder layer and the final norm over `total` packed rows (the math in this file's header):
 * each layer writes the rows' keys/values into `cache` before `attend` reads it. Returns normed = rms(x)·w_norm.
 * Buffers come from `pass` (the caller frees them); the MLP's [rows, intermediate] activations exist `mlpRows`
 * rows at a time.
 */
export function decoderLayers(model: Llama, rows: DecoderRows, total: number, cache: KvCache, mlpRows: number,
  pass: PassTensors, attend: AttendCache): Tensor {
  const { backend: be, config: cfg, tensors: w } = model;
  const d = cfg.hiddenSize, qWidth = cfg.numHeads * cfg.headDim, kvWidth = cfg.numKvHeads * cfg.headDim;
  // Limits before allocation (memory.ts): the pass's buffers, with the weights and cache it reads, must fit.
  if (be.name === "cpu") {
    checkMemory(`a forward pass over ${total} rows`, {
      parts: {
        weights: model.weightBytes(),
        "KV cache": kvCacheBytes(cfg, cache.keys[0].shape[0]),
        activations: forwardActivationBytes(cfg, total, mlpRows, Math.min(total, 256)),
      },
    });
  }
  const x = pass.alloc([total, d]);
  const normed = pass.alloc([total, d]);
  const q = pass.alloc([total, qWidth]);
  const k = pass.alloc([total, kvWidth]);
  const v = pass.alloc([total, kvWidth]);
  const attended = pass.alloc([total, qWidth]);
  const projected = pass.alloc([total, d]);
  const gate = pass.alloc([mlpRows, cfg.intermediateSize]);
  const up = pass.alloc([mlpRows, cfg.intermediateSize]);
  const q3 = be.reshape(q, [total, cfg.numHeads, cfg.headDim]);
  const k3 = be.reshape(k, [total, cfg.numKvHeads, cfg.headDim]);
  const attended3 = be.reshape(attended, [total, cfg.numHeads, cfg.headDim]);
  const transB = { transB: true };
  const cacheTotal = cache.keys[0].shape[0];

  be.embedding(rows.ids, w.embedTokens, x);
  w.layers.forEach((layer, index) => {
    be.rmsnorm(x, layer.inputNorm, cfg.rmsNormEps, normed);
    be.matmul(normed, layer.q, q, transB);
    be.matmul(normed, layer.k, k, transB);
    be.matmul(normed, layer.v, v, transB);
    be.rope(q3, rows.positions, model.invFreq, q3);
    be.rope(k3, rows.positions, model.invFreq, k3);
    be.scatterRows(k, rows.cacheRows, cache.keys[index]);
    be.scatterRows(v, rows.cacheRows, cache.values[index]);
    attend(q3, be.reshape(cache.keys[index], [cacheTotal, cfg.numKvHeads, cfg.headDim]),
      be.reshape(cache.values[index], [cacheTotal, cfg.numKvHeads, cfg.headDim]), attended3);
    be.matmul(attended, layer.o, projected, transB);
    be.add(x, projected, x);
    be.rmsnorm(x, layer.postNorm, cfg.rmsNormEps, normed);
    for (let start = 0; start < total; start += mlpRows) {
      const count = Math.min(mlpRows, total - start);
      const gateRows = count === mlpRows ? gate : be.sliceRows(gate, 0, count);
      const upRows = count === mlpRows ? up : be.sliceRows(up, 0, count);
      const chunk = count === total ? normed : be.sliceRows(normed, start, count);
      be.matmul(chunk, layer.gate, gateRows, transB);
      be.matmul(chunk, layer.up, upRows, transB);
      be.swiglu(gateRows, upRows, gateRows);
      be.matmul(gateRows, layer.down, count === total ? projected : be.sliceRows(projected, start, count), transB);
    }
    be.add(x, projected, x);
  });
  be.rmsnorm(x, w.norm, cfg.rmsNormEps, normed);
  return normed;
}

export class Llama {
  /** RoPE inverse frequencies [headDim / 2] on the backend. */
  readonly invFreq: Tensor;

  constructor(
    readonly backend: Backend,
    readonly config: LlamaConfig,
    readonly tensors: LlamaTensors,
  ) {
    this.invFreq = backend.upload(ropeInverseFrequencies(config), "f32", [config.headDim / 2]);
  }

  newCache(capacities: readonly number[]): KvCache {
    if (this.backend.name === "cpu") {
      const rows = capacities.reduce((sum, c) => sum + c, 0);
      checkMemory(`a KV cache of ${rows} rows`, {
        parts: { weights: this.weightBytes(), "KV cache": kvCacheBytes(this.config, rows) },
        fresh: ["KV cache"],
      });
    }
    return new KvCache(this.backend, this.config, capacities);
  }

  /** Bytes of this model's weights on its backend. */
  weightBytes(): number {
    const w = this.tensors;
    return tensorBytes([w.embedTokens, w.norm, w.lmHead, ...w.layers.flatMap((layer) => Object.values(layer))]);
  }

  /**
   * Per-token log-probabilities of whole texts given as token ids: result[s][t] = log p(tokens[t] | tokens[<t]),
   * NaN at t = 0 (nothing to condition on).
   */
  async tokenLogprobs(sequences: readonly (readonly number[])[]): Promise<Float32Array[]> {
    const nonEmpty = sequences.map((s) => Math.max(1, s.length));
    const cache = this.newCache(nonEmpty);
    try {
      const targets = sequences.map((s) => s.map((_, t) => (t + 1 < s.length ? s[t + 1] : -1)));
      const { logprobs } = await this.forward(cache, { tokens: sequences, targets });
      return logprobs!.map((row, s) => {
        const shifted = new Float32Array(sequences[s].length);
        if (shifted.length > 0) shifted[0] = NaN;
        for (let t = 1; t < shifted.length; t++) shifted[t] = row[t - 1];
        return shifted;
      });
    } finally {
      cache.free();
    }
  }

  /** Run new tokens of every sequence through the model, appending their keys/values to the cache. */
  async forward(cache: KvCache, request: ForwardRequest): Promise<ForwardResult> {
    const { backend: be, config: cfg } = this;
    const counts = request.tokens.map((t) => t.length);
    if (counts.length !== cache.sequenceCount) {
      throw new Error(`forward: ${counts.length} token lists for a cache of ${cache.sequenceCount} sequences`);
    }
    const total = counts.reduce((a, b) => a + b, 0);
    const result: ForwardResult = {};
    if (total === 0) {
      if (request.targets) result.logprobs = counts.map(() => new Float32Array(0));
      if (request.wantLogits) result.logits = counts.map(() => new Float32Array(0));
      return result;
    }

    // Packed token axis: ids, positions, cache rows and the key range each token attends.
    const ids = new Int32Array(total);
    const positions = new Int32Array(total);
    const cacheRows = new Int32Array(total);
    const keyStart = new Int32Array(total);
    const keyEnd = new Int32Array(total);
    let row = 0;
    request.tokens.forEach((tokens, s) => {
      if (cache.lengths[s] + tokens.length > cache.capacities[s]) {
        throw new Error(
          `forward: sequence ${s} would hold ${cache.lengths[s] + tokens.length} tokens, cache capacity is ${cache.capacities[s]}`,
        );
      }
      tokens.forEach((id, t) => {
        if (!Number.isInteger(id) || id < 0 || id >= cfg.vocabSize) {
          throw new Error(`forward: sequence ${s} token ${t} has id ${id}, outside the vocabulary [0, ${cfg.vocabSize})`);
        }
        const position = cache.lengths[s] + t;
        ids[row] = id;
        positions[row] = position;
        cacheRows[row] = cache.base[s] + position;
        keyStart[row] = cache.base[s];
        keyEnd[row] = cache.base[s] + position + 1;
        row++;
      });
    });

    const pass = new PassTensors(be);
    try {
      const rows = { ids: pass.upload(ids), positions: pass.upload(positions), cacheRows: pass.upload(cacheRows) };
      const keyStartT = pass.upload(keyStart);
      const keyEndT = pass.upload(keyEnd);
      const scale = 1 / Math.sqrt(cfg.headDim);
      const normed = decoderLayers(this, rows, total, cache, Math.min(MLP_CHUNK_ROWS, total), pass,
        (q3, keys3, values3, out3) => be.attention(q3, keys3, values3, keyStartT, keyEndT, scale, out3));
      request.tokens.forEach((tokens, s) => (cache.lengths[s] += tokens.length));

      await this.readOutputs(normed, counts, request, result, pass);
      return result;
    } finally {
      pass.free();
    }
  }

  /** Logits in row chunks: gather target log-probs and/or copy logits out, never holding all of them. */
  private async readOutputs(
    normed: Tensor,
    counts: number[],
    request: ForwardRequest,
    result: ForwardResult,
    pass: PassTensors,
  ): Promise<void> {
    const be = this.backend;
    const vocab = this.config.vocabSize;
    const total = counts.reduce((a, b) => a + b, 0);
    let flatTargets: Int32Array | undefined;
    if (request.targets) {
      const packed = new Int32Array(total);
      flatTargets = packed;
      let row = 0;
      request.targets.forEach((targets, s) => {
        if (targets.length !== counts[s]) {
          throw new Error(`forward: sequence ${s} has ${counts[s]} tokens but ${targets.length} targets`);
        }
        for (const id of targets) {
          if (!Number.isInteger(id) || id < -1 || id >= vocab) {
            throw new Error(`forward: sequence ${s} target ${id} outside [-1, ${vocab})`);
          }
          packed[row++] = id;
        }
      });
    }
    const flatLogprobs = flatTargets ? new Float32Array(total) : undefined;
    const flatLogits = request.wantLogits ? new Float32Array(total * vocab) : undefined;
    const chunkRows = Math.min(LOGIT_CHUNK_ROWS, total);
    const logits = pass.alloc([chunkRows, vocab]);
    const gathered = pass.alloc([chunkRows]);
    for (let start = 0; start < total; start += chunkRows) {
      const rows = Math.min(chunkRows, total - start);
      const logitRows = be.sliceRows(logits, 0, rows);
      be.matmul(be.sliceRows(normed, start, rows), this.tensors.lmHead, logitRows, { transB: true });
      if (flatTargets && flatLogprobs) {
        const targets = be.upload(flatTargets.subarray(start, start + rows), "i32", [rows]);
        const out = be.sliceRows(gathered, 0, rows);
        be.logSoftmaxGather(logitRows, targets, out);
        flatLogprobs.set((await be.download(out)) as Float32Array, start);
        be.free(targets);
      }
      if (flatLogits) flatLogits.set((await be.download(logitRows)) as Float32Array, start * vocab);
    }
    const split = (flat: Float32Array, width: number): Float32Array[] => {
      const parts: Float32Array[] = [];
      let offset = 0;
      for (const c of counts) {
        parts.push(flat.slice(offset * width, (offset + c) * width));
        offset += c;
      }
      return parts;
    };
    if (flatLogprobs) result.logprobs = split(flatLogprobs, 1);
    if (flatLogits) result.logits = split(flatLogits, vocab);
  }
}
