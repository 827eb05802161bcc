/**
 * Training forward and explicit backward of the Llama over the Backend interface, in the style of llm.c:
 * the forward saves what each op's backward needs; the backward walks the layers in reverse, *writing*
 * activation gradients (=) and *accumulating* parameter gradients (+=). Frozen weights get no gradient
 * buffers (LoRA); activation recomputation is a switch (`recompute`): only each layer's input is kept and
 * the layer's forward is run again, into one shared set of buffers, just before its backward.
 *
 * Per layer (HF semantics, y = x·Wᵀ, W [out, in]):
 *   n1 = rms(x)·w_in;  q, k, v = n1·Wqᵀ, n1·Wkᵀ, n1·Wvᵀ;  q, k ← RoPE;  a = attn(q, k, v)
 *   h  = x + a·Woᵀ;    n2 = rms(h)·w_post;  g, u = n2·Wgᵀ, n2·Wuᵀ;  s = silu(g) ⊙ u
 *   x' = h + s·Wdᵀ
 * then logits = rms(x_L)·w_norm·Wlmᵀ and a fused cross-entropy (softmax − onehot) per row.
 *
 * Backward of a Linear y = x·Wᵀ: dX = dY·W; dW += dYᵀ·X. With LoRA (u = x̃·Aᵀ, x̃ = dropout(x), y += s·u·Bᵀ):
 *   dB += s·dYᵀ·u;  du = s·dY·B;  dA += duᵀ·x̃;  dX += du·A (masked like x̃) — the rank-r product goes first
 *   and B·A is never formed.
 *
 * Matmul precision (`matmulDtype`): "f32" (default) multiplies in f32 throughout. "bf16" is PyTorch's bf16
 * autocast for the weight matmuls: each weight product reads a bf16 copy of the weight (full training keeps f32
 * master weights and refreshes the copies before a forward; a LoRA base is converted once, the LoRA A and B
 * are refreshed like masters), every operand is rounded to bf16 and products accumulate in f32; dW += dYᵀ·X
 * (and LoRA's dA, dB) read X (x̃, u) rounded to bf16. Attention is asked for bf16 products as well, which the
 * CUDA backend computes on tensor cores (the CPU and WebGPU backends stay f32). Norms, softmax statistics, the
 * loss and the optimizer stay f32.
 *
 * Packed batches: several documents share one token axis; token t attends keys [keyStart[t], keyEnd[t]),
 * its own document's prefix, so there is no attention across documents. Positions restart per document.
 */
import { MATMUL_DTYPES, type AttentionTrainingOptions, type Backend, type MatmulDtype, type Tensor } from "../engine/backend.js";
import type { LlamaConfig } from "../io/llama-config.js";
import { expectedTensorShapes } from "../io/llama-config.js";
import { ParameterStore, parameterUnits, writeInto, type ParameterGroup, type ParameterKind, type TrainableParameter } from "./parameter-groups.js";
import { ropeInverseFrequencies } from "./rope.js";
import type { HostTensor, LlamaWeights } from "./weights.js";
import { initialTensorValues } from "./init.js";
import { checkMemory, dtypeBytes, trainingActivationBytes } from "./memory.js";
import { float32ToBfloat16, toFloat32 } from "../io/dtype.js";
import { mix32 } from "../util/random.js";
import {
  LORA_TARGET_MODULES, peftKey, validateLoraConfig, type LoraConfig, type LoraMatrices, type LoraTargetModule,
} from "../io/lora-config.js";
import { initialLoraMatrices, loraScaling } from "./lora.js";

/** How the weight matmuls multiply: in f32, or on bf16 copies like PyTorch's bf16 autocast (see the top of this file). */
export { MATMUL_DTYPES, type MatmulDtype } from "../engine/backend.js";

/**
 * Parts of the model full training can hold at their loaded values: the token embedding (and lm_head, tied to it
 * or not), the attention projections (q, k, v, o) or the MLP projections (gate, up, down) of every layer. Norm
 * weights always train.
 */
export const FROZEN_PARTS = ["embeddings", "attention", "mlp"] as const;
export type FrozenPart = (typeof FROZEN_PARTS)[number];

/** What training changes: every weight ("full") but the `frozen` parts, or a LoRA adapter over frozen base weights. */
export type TrainingMode = { kind: "full"; frozen?: readonly FrozenPart[] } | { kind: "lora"; lora: LoraConfig };

/** A comma-separated list of frozen parts ("attention,mlp"), each once; throws naming an unknown one. */
export function parseFrozenParts(list: string): FrozenPart[] {
  const parts = list.split(",").map((p) => p.trim()).filter((p) => p !== "");
  for (const part of parts) {
    if (!(FROZEN_PARTS as readonly string[]).includes(part)) throw new Error(`unknown part "${part}" (parts: ${FROZEN_PARTS.join(", ")})`);
  }
  return FROZEN_PARTS.filter((part) => parts.includes(part));
}

const ATTENTION_LINEARS: readonly string[] = ["q", "k", "v", "o"];

/** Whether full training with `frozen` parts holds layer linear `key` (q … down) at its loaded values. */
function linearFrozen(key: string, frozen: ReadonlySet<FrozenPart>): boolean {
  return frozen.has(ATTENTION_LINEARS.includes(key) ? "attention" : "mlp");
}

export interface TrainableLlamaOptions {
  mode: TrainingMode;
  /** Most tokens in one packed micro-batch: activation buffers are sized for it once. */
  maxTokens: number;
  /** Keep only each layer's input and recompute the layer in backward (less memory, ~1/3 more compute). */
  recompute?: boolean;
  /** Seed of fresh LoRA matrices and of dropout masks (default 0). */
  seed?: number;
  /** Adapter values to start from (loading or resuming); default: fresh PEFT init from `seed`. */
  loraMatrices?: LoraMatrices[];
  /**
   * How per-row losses are read back (default `backend.download`). A float64 test backend passes its exact
   * reader here so whole-model finite differences see no f32 rounding.
   */
  readLosses?: (losses: Tensor) => Promise<ArrayLike<number>>;
  /** Replace the parts around the layers (the CAREER baseline, src/model/career.ts, uses them). */
  hooks?: TrainableLlamaHooks;
  /** Default "f32". */
  matmulDtype?: MatmulDtype;
}

/**
 * Other inputs and another loss around the same decoder layers: extra embeddings added to the token
 * embedding, and a loss computed from the logits in place of the fused cross-entropy.
 */
export interface TrainableLlamaHooks {
  /** x0 [T, d] += extra input embeddings of the batch (after the token embedding). */
  addInput?(x0: Tensor, batch: PackedBatch): void;
  /** Accumulate the gradients of what addInput added, given dx0 = ∂loss/∂x0 (read-only). */
  inputBackward?(dx0: Tensor, batch: PackedBatch): void;
  /**
   * In place of the fused cross-entropy, for logits [rows, vocab] of batch rows [start, start + rows):
   * return each row's loss (rows whose target is −1 are ignored) and overwrite `logits` with
   * gradScale · ∂loss/∂logits (zero on rows whose target is −1).
   */
  loss?(logits: Tensor, batch: PackedBatch, start: number, gradScale: number): Promise<ArrayLike<number>>;
}

/** One packed micro-batch: documents laid end to end on one token axis. */
export interface PackedBatch {
  ids: Int32Array;
  /** RoPE position of each token (restarting at 0 in every document). */
  positions: Int32Array;
  /** Token t attends keys [keyStart[t], keyEnd[t]) — its own document up to itself. */
  keyStart: Int32Array;
  keyEnd: Int32Array;
  /** Id each token's output must predict, or −1 where the loss skips it. */
  targets: Int32Array;
  /** Number of targets ≥ 0. */
  targetCount: number;
  /**
   * Optional: 1 where the row's target is a token to avoid (unlikelihood): that row's loss is
   * −log(1 − p(target)) instead of −log p(target).
   */
  avoid?: Uint8Array;
  /** Distinct for every micro-batch of a run: dropout masks are a function of (seed, serial). */
  serial: number;
}

export type { TrainableParameter } from "./parameter-groups.js";

export interface ForwardOutcome {
  /** Σ of the per-token losses −log p(target) over tokens with a target. */
  lossSum: number;
  targetCount: number;
  /** Per-token loss (0 where the target is −1). */
  rowLosses: ArrayLike<number>;
}

interface LoraAdapter {
  module: LoraTargetModule;
  layer: number;
  a: Tensor;
  b: Tensor;
  gradA: Tensor;
  gradB: Tensor;
  /** What the matmuls read: a and b, or their bf16 copies (matmulDtype "bf16"). */
  aMatmul: Tensor;
  bMatmul: Tensor;
}

interface TrainNorm {
  weight: Tensor;
  /** null when frozen. */
  grad: Tensor | null;
  /** What the matmuls read: `weight` itself, or its bf16 copy (matmulDtype "bf16"). */
  matmulWeight: Tensor;
}

interface TrainLinear extends TrainNorm {
  lora: LoraAdapter | null;
  inFeatures: number;
}

interface TrainLayer {
  inputNorm: TrainNorm;
  q: TrainLinear;
  k: TrainLinear;
  v: TrainLinear;
  o: TrainLinear;
  postNorm: TrainNorm;
  gate: TrainLinear;
  up: TrainLinear;
  down: TrainLinear;
}

/** What one layer's backward needs from its forward (views of [maxTokens, ...] buffers). */
interface LayerActivations {
  n1: Tensor;
  q: Tensor;
  k: Tensor;
  v: Tensor;
  att: Tensor;
  lse: Tensor;
  h: Tensor;
  n2: Tensor;
  g: Tensor;
  u: Tensor;
  s: Tensor;
  /** LoRA u = x̃·Aᵀ [T, r] per adapted module. */
  loraU: Map<LoraTargetModule, Tensor>;
}

/** Per-call state: the batch on the backend and what the LoRA dropout made. */
interface BatchContext {
  rows: number;
  ids: Tensor;
  positions: Tensor;
  keyStart: Tensor;
  keyEnd: Tensor;
  serial: number;
  training: boolean;
  /** Dropped-out LoRA inputs x̃ by "layer:module" (host masks are regenerated when needed). */
  dropped: Map<string, Tensor>;
  temporaries: Tensor[];
}

/** Rows of logits materialised at once: bounds memory at LOGIT_CHUNK_ROWS × vocab floats. */
const LOGIT_CHUNK_ROWS = 128;
/** An unlikelihood row's p is capped at 1 − this, so its loss (≤ 13.8 nats) and gradient factor stay finite. */
const UNLIKELIHOOD_P_CAP = 1e-6;

const LAYER_LINEARS = ["q", "k", "v", "o", "gate", "up", "down"] as const;
const MODULE_OF: Record<(typeof LAYER_LINEARS)[number], LoraTargetModule> = {
  q: "q_proj", k: "k_proj", v: "v_proj", o: "o_proj", gate: "gate_proj", up: "up_proj", down: "down_proj",
};

/** A Llama whose forward saves activations and whose backward fills gradients of the trainable tensors. */
export class TrainableLlama {
  /** Every trainable tensor, group by group of the parameter store (see parameter-groups.ts). */
  readonly parameters: TrainableParameter[] = [];
  readonly lora: LoraConfig | null;
  private readonly loraScale: number;
  private readonly layers: TrainLayer[];
  private readonly embed: TrainNorm;
  private readonly finalNorm: TrainNorm;
  private readonly lmHead: TrainNorm;
  private readonly invFreq: Tensor;
  private readonly recompute: boolean;
  private readonly seed: number;
  private readonly readLosses: (t: Tensor) => Promise<ArrayLike<number>>;
  private readonly owned: Tensor[] = [];
  private buffers: Map<string, Tensor> | null = null;
  private readonly bf16Matmuls: boolean;
  /** matmulDtype reaches attention too: bf16 lets a backend use its tensor-core attention (CUDA). */
  private readonly attentionOptions: AttentionTrainingOptions;
  private readonly store: ParameterStore;
  /** bf16 matmuls: each group with bf16 copies (full training's matrices, LoRA's A and B) and the member versions
   * its copy was made from (−1: not yet). */
  private readonly matmulCopies: { group: ParameterGroup; versions: number[] }[] = [];

  constructor(
    readonly backend: Backend,
    readonly config: LlamaConfig,
    weights: LlamaWeights,
    readonly options: TrainableLlamaOptions,
  ) {
    const be = backend;
    if (!Number.isInteger(options.maxTokens) || options.maxTokens < 1) throw new Error(`maxTokens must be a positive integer, got ${options.maxTokens}`);
    this.recompute = options.recompute ?? false;
    this.seed = options.seed ?? 0;
    this.readLosses = options.readLosses ?? ((t) => be.download(t));
    const full = options.mode.kind === "full";
    const frozenParts = new Set<FrozenPart>(options.mode.kind === "full" ? options.mode.frozen ?? [] : []);
    for (const part of frozenParts) if (!FROZEN_PARTS.includes(part)) throw new Error(`frozen parts are ${FROZEN_PARTS.join(", ")}; got ${String(part)}`);
    this.lora = options.mode.kind === "lora" ? options.mode.lora : null;
    if (this.lora) validateLoraConfig(this.lora);
    this.loraScale = this.lora ? loraScaling(this.lora) : 0;

    // Full training: f32 master copies of every weight (bf16/f16 checkpoints are widened), each with a
    // gradient. LoRA: the base stays as loaded (possibly bf16, memory-mapped) and gets no gradient; its backend
    // tensors are still this model's to free (device memory on a GPU backend).
    // `matmul`: the weight is multiplied (Linear, lm_head), so with bf16 matmuls it is read in bf16.
    const matmulDtype = options.matmulDtype ?? "f32";
    if (!MATMUL_DTYPES.includes(matmulDtype)) throw new Error(`matmulDtype must be one of ${MATMUL_DTYPES.join(", ")}, got ${String(matmulDtype)}`);
    this.bf16Matmuls = matmulDtype === "bf16";
    this.attentionOptions = { matmulDtype };
    const planned = plannedParameters(config, weights, full, frozenParts, this.lora, this.bf16Matmuls);
    if (be.name === "cpu") {
      checkTrainingMemory(config, weights, planned, { lora: this.lora, frozen: frozenParts, bf16: this.bf16Matmuls, maxTokens: options.maxTokens, recompute: this.recompute });
    }
    this.store = new ParameterStore(be, planned);
    const param = (name: string, host: HostTensor, decay: boolean, matmul: boolean, frozen = !full): TrainNorm => {
      const lower = this.bf16Matmuls && matmul;
      if (frozen) {
        const weight = this.own(lower && host.dtype !== "bf16"
          ? be.weight(float32ToBfloat16(toFloat32(host.data, host.dtype)), "bf16", host.shape)
          : be.weight(host.data, host.dtype, host.shape));
        return { weight, grad: null, matmulWeight: weight };
      }
      const { parameter, copy } = this.store.add(name, host.shape, { decay, copy: lower }, toFloat32(host.data, host.dtype));
      return { weight: parameter.value, grad: parameter.grad, matmulWeight: copy ?? parameter.value };
    };
    this.embed = param("model.embed_tokens.weight", weights.embedTokens, true, config.tieWordEmbeddings, !full || frozenParts.has("embeddings"));
    const loraByKey = new Map<string, LoraMatrices>();
    if (this.lora) {
      for (const m of options.loraMatrices ?? initialLoraMatrices(config, this.lora, this.seed)) loraByKey.set(`${m.layer}:${m.module}`, m);
    }
    this.layers = weights.layers.map((w, layer) => {
      const prefix = `model.layers.${layer}.`;
      const linear = (key: (typeof LAYER_LINEARS)[number], sub: string): TrainLinear => {
        const host = w[key];
        const { weight, grad, matmulWeight } = param(`${prefix}${sub}.weight`, host, true, true, !full || linearFrozen(key, frozenParts));
        const module = MODULE_OF[key];
        let adapter: LoraAdapter | null = null;
        if (this.lora && this.lora.targetModules.includes(module)) {
          const values = loraByKey.get(`${layer}:${module}`);
          if (!values) throw new Error(`LoRA: no values for layer ${layer} ${module}`);
          adapter = this.newAdapter(layer, module, values, host.shape as [number, number]);
        }
        return { weight, grad, matmulWeight, lora: adapter, inFeatures: host.shape[1] };
      };
      return {
        inputNorm: param(`${prefix}input_layernorm.weight`, w.inputNorm, false, false),
        q: linear("q", "self_attn.q_proj"),
        k: linear("k", "self_attn.k_proj"),
        v: linear("v", "self_attn.v_proj"),
        o: linear("o", "self_attn.o_proj"),
        postNorm: param(`${prefix}post_attention_layernorm.weight`, w.postNorm, false, false),
        gate: linear("gate", "mlp.gate_proj"),
        up: linear("up", "mlp.up_proj"),
        down: linear("down", "mlp.down_proj"),
      };
    });
    this.finalNorm = param("model.norm.weight", weights.norm, false, false);
    this.lmHead = config.tieWordEmbeddings ? this.embed : param("lm_head.weight", weights.lmHead, true, true, !full || frozenParts.has("embeddings"));
    this.invFreq = this.own(be.upload(ropeInverseFrequencies(config), "f32", [config.headDim / 2]));
    this.store.finish();
    for (const group of this.store.groups) {
      this.parameters.push(...group.members);
      if (group.copy) this.matmulCopies.push({ group, versions: group.members.map(() => -1) });
    }
  }

  private own(t: Tensor): Tensor {
    this.owned.push(t);
    return t;
  }

  private newAdapter(layer: number, module: LoraTargetModule, values: LoraMatrices, shape: [number, number]): LoraAdapter {
    const rank = this.lora!.rank;
    const [out, inFeatures] = shape;
    if (values.a.length !== rank * inFeatures || values.b.length !== out * rank) {
      throw new Error(`LoRA layer ${layer} ${module}: A must be [${rank}, ${inFeatures}] and B [${out}, ${rank}]`);
    }
    const kind = { decay: true, copy: this.bf16Matmuls };
    const a = this.store.add(peftKey(layer, module, "A"), [rank, inFeatures], kind, values.a);
    const b = this.store.add(peftKey(layer, module, "B"), [out, rank], kind, values.b);
    return {
      layer, module, a: a.parameter.value, b: b.parameter.value, gradA: a.parameter.grad, gradB: b.parameter.grad,
      aMatmul: a.copy ?? a.parameter.value, bMatmul: b.copy ?? b.parameter.value,
    };
  }

  /** Set every gradient to zero (start of an optimizer step): one fill per parameter group. */
  zeroGradients(): void {
    for (const unit of parameterUnits(this.parameters)) this.backend.fill(unit.grad, 0);
  }

  /** Convert each group's bf16 copy, whole, when any member has been written since it was made (bf16 matmuls). */
  private refreshMatmulCopies(): void {
    for (const entry of this.matmulCopies) {
      const members = entry.group.members;
      if (members.every((p, i) => entry.versions[i] === p.version)) continue;
      this.backend.convert(entry.group.value, entry.group.copy!);
      members.forEach((p, i) => { entry.versions[i] = p.version; });
    }
  }

  /** `x` as the weight-gradient products read it: x itself, or rounded to bf16 into buffer `name` (bf16 matmuls). */
  private gradOperand(x: Tensor, name: string): Tensor {
    if (!this.bf16Matmuls) return x;
    const [rows, width] = x.shape;
    const view = this.backend.sliceRows(this.buffer(name, width, "bf16"), 0, rows);
    this.backend.convert(x, view);
    return view;
  }

  /** gradOperand(x, name), made on the first call only (the Linears sharing an input may not need it at all). */
  private lazyGradOperand(x: Tensor, name: string): () => Tensor {
    let operand: Tensor | undefined;
    return () => (operand ??= this.gradOperand(x, name));
  }

  /** Current values of every trainable tensor on the host, by parameter name. */
  async parameterValues(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const p of this.parameters) out.set(p.name, (await this.backend.download(p.value)) as Float32Array);
    return out;
  }

  /** Overwrite trainable tensors in place (resuming): every parameter must be given, with its size. */
  setParameterValues(values: Map<string, Float32Array>): void {
    const be = this.backend;
    for (const p of this.parameters) {
      const v = values.get(p.name);
      if (!v || v.length !== p.value.size) throw new Error(`no saved values of the right size for ${p.name}`);
      writeInto(be, p.value, v); // into the tensor the layers hold
      p.version++;
    }
  }

  /** Current adapter values on the host (LoRA mode). */
  async loraMatrices(): Promise<LoraMatrices[]> {
    const out: LoraMatrices[] = [];
    for (const layer of this.layers) {
      for (const key of LAYER_LINEARS) {
        const adapter = layer[key].lora;
        if (!adapter) continue;
        out.push({
          layer: adapter.layer,
          module: adapter.module,
          a: (await this.backend.download(adapter.a)) as Float32Array,
          b: (await this.backend.download(adapter.b)) as Float32Array,
        });
      }
    }
    return out;
  }

  /**
   * Forward, fused cross-entropy and backward for one micro-batch: gradients of the mean loss are
   * accumulated into every parameter's grad, each row's loss gradient scaled by `gradScale` (1 / the
   * number of targets of the whole optimizer step, so micro-batches add up to the mean).
   */
  async forwardBackward(batch: PackedBatch, gradScale: number): Promise<ForwardOutcome> {
    return this.run(batch, { backward: true, training: true, gradScale });
  }

  /** Forward only (no dropout, no gradients): the summed loss over the batch's targets. */
  async evaluate(batch: PackedBatch): Promise<ForwardOutcome> {
    return this.run(batch, { backward: false, training: false, gradScale: 0 });
  }

  /** Release every backend tensor this model allocated. */
  free(): void {
    for (const t of this.owned) this.backend.free(t);
    this.owned.length = 0;
    this.store.free();
    if (this.buffers) for (const t of this.buffers.values()) this.backend.free(t);
    this.buffers = null;
  }

  // ---------------------------------------------------------------------------------------------------
  // Buffers

  /** Activation/gradient buffers at capacity maxTokens, allocated on first use. */
  private buffer(name: string, width: number, dtype: "f32" | "bf16" = "f32"): Tensor {
    this.buffers ??= new Map();
    const key = dtype === "f32" ? name : `${name}:${dtype}`;
    let t = this.buffers.get(key);
    if (!t) {
      t = this.backend.alloc(dtype, [this.options.maxTokens, width]);
      this.buffers.set(key, t);
    }
    return t;
  }

  private rows(name: string, width: number, count: number): Tensor {
    return this.backend.sliceRows(this.buffer(name, width), 0, count);
  }

  /** Saved activations of a layer ("shared" when recomputing: one set reused by every layer). */
  private activations(layer: number | "shared", rows: number): LayerActivations {
    const cfg = this.config;
    const qW = cfg.numHeads * cfg.headDim, kvW = cfg.numKvHeads * cfg.headDim, ff = cfg.intermediateSize, d = cfg.hiddenSize;
    const p = `act${layer}.`;
    const loraU = new Map<LoraTargetModule, Tensor>();
    if (this.lora) for (const m of this.lora.targetModules) loraU.set(m, this.rows(`${p}lora.${m}`, this.lora.rank, rows));
    return {
      n1: this.rows(`${p}n1`, d, rows),
      q: this.rows(`${p}q`, qW, rows),
      k: this.rows(`${p}k`, kvW, rows),
      v: this.rows(`${p}v`, kvW, rows),
      att: this.rows(`${p}att`, qW, rows),
      lse: this.rows(`${p}lse`, cfg.numHeads, rows),
      h: this.rows(`${p}h`, d, rows),
      n2: this.rows(`${p}n2`, d, rows),
      g: this.rows(`${p}g`, ff, rows),
      u: this.rows(`${p}u`, ff, rows),
      s: this.rows(`${p}s`, ff, rows),
      loraU,
    };
  }

  private layerActivations(layer: number, rows: number): LayerActivations {
    return this.activations(this.recompute ? "shared" : layer, rows);
  }

  // ---------------------------------------------------------------------------------------------------
  // Forward / backward

  private async run(batch: PackedBatch, how: { backward: boolean; training: boolean; gradScale: number }): Promise<ForwardOutcome> {
    const be = this.backend, cfg = this.config;
    const T = batch.ids.length;
    checkBatch(batch, cfg, this.options.maxTokens);
    this.refreshMatmulCopies();
    const ctx: BatchContext = {
      rows: T,
      ids: be.upload(batch.ids, "i32", [T]),
      positions: be.upload(batch.positions, "i32", [T]),
      keyStart: be.upload(batch.keyStart, "i32", [T]),
      keyEnd: be.upload(batch.keyEnd, "i32", [T]),
      serial: batch.serial,
      training: how.training,
      dropped: new Map(),
      temporaries: [],
    };
    ctx.temporaries.push(ctx.ids, ctx.positions, ctx.keyStart, ctx.keyEnd);
    const d = cfg.hiddenSize;
    try {
      // Residual stream: xs[l] is layer l's input (kept for every layer, also when recomputing).
      const xs = Array.from({ length: cfg.numLayers + 1 }, (_, l) => this.rows(`x${l}`, d, T));
      be.embedding(ctx.ids, this.embed.weight, xs[0]);
      this.options.hooks?.addInput?.(xs[0], batch);
      for (let l = 0; l < cfg.numLayers; l++) await this.layerForward(l, xs[l], xs[l + 1], this.layerActivations(l, T), ctx);

      const dx = this.rows("dx", d, T);
      const outcome = await this.head(xs[cfg.numLayers], batch, ctx, how, dx);
      if (!how.backward) return outcome;

      for (let l = cfg.numLayers - 1; l >= 0; l--) {
        const acts = this.layerActivations(l, T);
        if (this.recompute) await this.layerForward(l, xs[l], this.rows("xScratch", d, T), acts, ctx);
        await this.layerBackward(l, xs[l], acts, dx, ctx);
      }
      // dTable[ids[t]] += dx[t]
      if (this.embed.grad) be.embeddingBackward(ctx.ids, dx, this.embed.grad);
      this.options.hooks?.inputBackward?.(dx, batch);
      return outcome;
    } finally {
      for (const t of ctx.temporaries) be.free(t);
    }
  }

  /** Final norm, logits in row chunks, fused cross-entropy; with backward, dx = ∂loss/∂x_L. */
  private async head(
    x: Tensor, batch: PackedBatch, ctx: BatchContext, how: { backward: boolean; gradScale: number }, dx: Tensor,
  ): Promise<ForwardOutcome> {
    const be = this.backend, cfg = this.config, targets = batch.targets, lossHook = this.options.hooks?.loss;
    const T = ctx.rows, d = cfg.hiddenSize, vocab = cfg.vocabSize;
    const xf = this.rows("xf", d, T);
    be.rmsnorm(x, this.finalNorm.weight, cfg.rmsNormEps, xf);
    const dxf = how.backward ? this.rows("dxf", d, T) : null;
    if (!lossHook) {
      const { lossSum, targetCount, rowLosses } = await this.targetRowsHead(xf, targets, batch.avoid, ctx, how.gradScale, dxf);
      if (dxf) be.rmsnormBackward(x, this.finalNorm.weight, dxf, cfg.rmsNormEps, dx, this.finalNorm.grad);
      return { lossSum, targetCount, rowLosses };
    }
    if (batch.avoid?.some((a) => a !== 0)) throw new Error("training batch: unlikelihood targets (avoid) need the model's own cross-entropy head, not a custom loss");
    // A custom loss (CAREER's two-stage head) reads logits by batch row: chunks of consecutive rows.
    const chunk = Math.min(LOGIT_CHUNK_ROWS, T);
    const logits = be.alloc("f32", [chunk, vocab]);
    ctx.temporaries.push(logits);
    const rowLosses = new Float64Array(T);
    let lossSum = 0, targetCount = 0;
    for (let start = 0; start < T; start += chunk) {
      const rows = Math.min(chunk, T - start);
      const chunkTargets = targets.subarray(start, start + rows);
      const valid = chunkTargets.reduce((n, y) => n + (y >= 0 ? 1 : 0), 0);
      if (valid === 0) {
        if (dxf) be.fill(be.sliceRows(dxf, start, rows), 0);
        continue;
      }
      const xfRows = be.sliceRows(xf, start, rows);
      const logitRows = be.sliceRows(logits, 0, rows);
      be.matmul(xfRows, this.lmHead.matmulWeight, logitRows, { transB: true });
      const values = await lossHook(logitRows, batch, start, how.gradScale);
      for (let r = 0; r < rows; r++) {
        if (chunkTargets[r] < 0) continue;
        rowLosses[start + r] = values[r];
        lossSum += values[r];
        targetCount++;
      }
      if (dxf) {
        // dXf = dZ · Wlm;  dWlm += dZᵀ · Xf
        be.matmul(logitRows, this.lmHead.matmulWeight, be.sliceRows(dxf, start, rows));
        if (this.lmHead.grad) be.matmul(logitRows, this.gradOperand(xfRows, "xfRows"), this.lmHead.grad, { transA: true, accumulate: true });
      }
    }
    if (dxf) be.rmsnormBackward(x, this.finalNorm.weight, dxf, cfg.rmsNormEps, dx, this.finalNorm.grad);
    return { lossSum, targetCount, rowLosses };
  }

  /**
   * The fused cross-entropy head over only the rows that have a target: those rows of xf are gathered
   * (the embedding op with xf as the table), so the [rows, vocab] logits — most of a small model's cost —
   * are computed only where a loss is taken (a targets-only loss skips most rows).
   *   z = xf[idx]·Wlmᵀ;  dz = gradScale·(softmax(z) − onehot(y));  dXf[idx] = dz·Wlm (other rows 0);  dWlm += dzᵀ·xf[idx]
   * A row marked in `avoid` takes the unlikelihood loss −log(1 − p) of its target, p = softmax(z)_y = e^(−CE):
   *   ∂/∂z of −log(1 − p) = −(p / (1 − p))·(softmax(z) − onehot(y)),
   * i.e. the cross-entropy row's gradient scaled by −p/(1 − p) (p capped at 1 − 1e−6 so the factor stays finite).
   */
  private async targetRowsHead(
    xf: Tensor, targets: Int32Array, avoid: Uint8Array | undefined, ctx: BatchContext, gradScale: number, dxf: Tensor | null,
  ): Promise<ForwardOutcome> {
    const be = this.backend, d = this.config.hiddenSize, vocab = this.config.vocabSize;
    const rowIndex: number[] = [];
    for (let t = 0; t < targets.length; t++) if (targets[t] >= 0) rowIndex.push(t);
    const rowLosses = new Float64Array(targets.length);
    if (dxf) be.fill(dxf, 0);
    let lossSum = 0;
    if (rowIndex.length === 0) return { lossSum, targetCount: 0, rowLosses };
    const chunk = Math.min(LOGIT_CHUNK_ROWS, rowIndex.length);
    const gathered = be.alloc("f32", [chunk, d]);
    const dGathered = dxf ? be.alloc("f32", [chunk, d]) : null;
    const logits = be.alloc("f32", [chunk, vocab]);
    const losses = be.alloc("f32", [chunk]);
    ctx.temporaries.push(gathered, logits, losses, ...(dGathered ? [dGathered] : []));
    for (let start = 0; start < rowIndex.length; start += chunk) {
      const rows = Math.min(chunk, rowIndex.length - start);
      const indices = Int32Array.from(rowIndex.slice(start, start + rows));
      const indexT = be.upload(indices, "i32", [rows]);
      const targetT = be.upload(Int32Array.from(indices, (t) => targets[t]), "i32", [rows]);
      ctx.temporaries.push(indexT, targetT);
      const xRows = be.sliceRows(gathered, 0, rows);
      const logitRows = be.sliceRows(logits, 0, rows);
      const lossRows = be.sliceRows(losses, 0, rows);
      be.embedding(indexT, xf, xRows);
      be.matmul(xRows, this.lmHead.matmulWeight, logitRows, { transB: true });
      be.crossEntropy(logitRows, targetT, gradScale, lossRows, logitRows);
      const values = await this.readLosses(lossRows);
      for (let r = 0; r < rows; r++) {
        let loss = values[r];
        if (avoid?.[indices[r]]) {
          const p = Math.min(Math.exp(-loss), 1 - UNLIKELIHOOD_P_CAP);
          loss = -Math.log1p(-p);
          if (dxf) {
            const row = be.sliceRows(logitRows, r, 1);
            be.scale(row, -p / (1 - p), row);
          }
        }
        rowLosses[indices[r]] = loss;
        lossSum += loss;
      }
      if (dxf && dGathered) {
        const dRows = be.sliceRows(dGathered, 0, rows);
        be.matmul(logitRows, this.lmHead.matmulWeight, dRows);
        be.scatterRows(dRows, indexT, dxf);
        if (this.lmHead.grad) be.matmul(logitRows, this.gradOperand(xRows, "xfRows"), this.lmHead.grad, { transA: true, accumulate: true });
      }
    }
    return { lossSum, targetCount: rowIndex.length, rowLosses };
  }

  private async layerForward(l: number, x: Tensor, out: Tensor, a: LayerActivations, ctx: BatchContext): Promise<void> {
    const be = this.backend, cfg = this.config, layer = this.layers[l];
    const T = ctx.rows, eps = cfg.rmsNormEps;
    const proj = this.rows("proj", cfg.hiddenSize, T);
    be.rmsnorm(x, layer.inputNorm.weight, eps, a.n1);
    await this.linearForward(l, layer.q, a.n1, a.q, a, ctx);
    await this.linearForward(l, layer.k, a.n1, a.k, a, ctx);
    await this.linearForward(l, layer.v, a.n1, a.v, a, ctx);
    const q3 = be.reshape(a.q, [T, cfg.numHeads, cfg.headDim]);
    const k3 = be.reshape(a.k, [T, cfg.numKvHeads, cfg.headDim]);
    const v3 = be.reshape(a.v, [T, cfg.numKvHeads, cfg.headDim]);
    be.rope(q3, ctx.positions, this.invFreq, q3);
    be.rope(k3, ctx.positions, this.invFreq, k3);
    be.attentionForTraining(q3, k3, v3, ctx.keyStart, ctx.keyEnd, 1 / Math.sqrt(cfg.headDim),
      be.reshape(a.att, [T, cfg.numHeads, cfg.headDim]), a.lse, this.attentionOptions);
    await this.linearForward(l, layer.o, a.att, proj, a, ctx);
    be.add(x, proj, a.h); // h = x + a·Woᵀ
    be.rmsnorm(a.h, layer.postNorm.weight, eps, a.n2);
    await this.linearForward(l, layer.gate, a.n2, a.g, a, ctx);
    await this.linearForward(l, layer.up, a.n2, a.u, a, ctx);
    be.swiglu(a.g, a.u, a.s);
    await this.linearForward(l, layer.down, a.s, proj, a, ctx);
    be.add(a.h, proj, out); // x' = h + s·Wdᵀ
  }

  /** dx holds ∂loss/∂(layer output) on entry and ∂loss/∂(layer input) on exit. */
  private async layerBackward(l: number, x: Tensor, a: LayerActivations, dx: Tensor, ctx: BatchContext): Promise<void> {
    const be = this.backend, cfg = this.config, layer = this.layers[l];
    const T = ctx.rows, eps = cfg.rmsNormEps, d = cfg.hiddenSize, ff = cfg.intermediateSize;
    const qW = cfg.numHeads * cfg.headDim, kvW = cfg.numKvHeads * cfg.headDim;
    const dn = this.rows("dn", d, T), dTmp = this.rows("dTmp", d, T);
    const ds = this.rows("ds", ff, T), dg = this.rows("dg", ff, T), du = this.rows("du", ff, T);

    // MLP: x' = h + s·Wdᵀ, so dh = dx' (+ the norm path below) and ds = dx'·Wd.
    await this.linearBackward(l, layer.down, a.s, this.lazyGradOperand(a.s, "s"), dx, ds, false, a, ctx);
    be.swigluBackward(a.g, a.u, ds, dg, du);
    const n2 = this.lazyGradOperand(a.n2, "n");
    await this.linearBackward(l, layer.gate, a.n2, n2, dg, dn, false, a, ctx);
    await this.linearBackward(l, layer.up, a.n2, n2, du, dn, true, a, ctx);
    be.rmsnormBackward(a.h, layer.postNorm.weight, dn, eps, dTmp, layer.postNorm.grad);
    be.add(dx, dTmp, dx); // dh = dx' + ∂n2/∂h · dn2

    // Attention: h = x + a·Woᵀ, so dx = dh (+ the norm path) and da = dh·Wo.
    const datt = this.rows("datt", qW, T);
    await this.linearBackward(l, layer.o, a.att, this.lazyGradOperand(a.att, "att"), dx, datt, false, a, ctx);
    const dq = this.rows("dq", qW, T), dk = this.rows("dk", kvW, T), dv = this.rows("dv", kvW, T);
    const shapeQ = [T, cfg.numHeads, cfg.headDim], shapeKv = [T, cfg.numKvHeads, cfg.headDim];
    const dq3 = be.reshape(dq, shapeQ), dk3 = be.reshape(dk, shapeKv);
    be.attentionBackward(be.reshape(a.q, shapeQ), be.reshape(a.k, shapeKv), be.reshape(a.v, shapeKv),
      be.reshape(a.att, shapeQ), be.reshape(datt, shapeQ), a.lse, ctx.keyStart, ctx.keyEnd, 1 / Math.sqrt(cfg.headDim),
      dq3, dk3, be.reshape(dv, shapeKv), this.attentionOptions);
    // q, k were rotated after the projection: undo the rotation on their gradients.
    be.ropeBackward(dq3, ctx.positions, this.invFreq, dq3);
    be.ropeBackward(dk3, ctx.positions, this.invFreq, dk3);
    const n1 = this.lazyGradOperand(a.n1, "n"); // the same buffer as n2's: the MLP's products are done
    await this.linearBackward(l, layer.q, a.n1, n1, dq, dn, false, a, ctx);
    await this.linearBackward(l, layer.k, a.n1, n1, dk, dn, true, a, ctx);
    await this.linearBackward(l, layer.v, a.n1, n1, dv, dn, true, a, ctx);
    be.rmsnormBackward(x, layer.inputNorm.weight, dn, eps, dTmp, layer.inputNorm.grad);
    be.add(dx, dTmp, dx); // dx = dh + ∂n1/∂x · dn1
  }

  /** y = x·Wᵀ (+ s·(x̃·Aᵀ)·Bᵀ). */
  private async linearForward(l: number, lin: TrainLinear, x: Tensor, y: Tensor, a: LayerActivations, ctx: BatchContext): Promise<void> {
    const be = this.backend;
    be.matmul(x, lin.matmulWeight, y, { transB: true });
    const adapter = lin.lora;
    if (!adapter) return;
    const xd = await this.droppedInput(adapter, x, ctx);
    const u = a.loraU.get(adapter.module)!;
    be.matmul(xd, adapter.aMatmul, u, { transB: true }); // u = x̃·Aᵀ  [T, r]
    be.matmul(u, adapter.bMatmul, y, { transB: true, accumulate: true, alpha: this.loraScale }); // y += s·u·Bᵀ
  }

  /**
   * dInput (=, or += when `accumulate`) = dY·W, dW += dYᵀ·X when W trains (X read as `xForGrad()`: x itself or
   * its bf16 rounding, made when first asked for), and the LoRA gradients.
   */
  private async linearBackward(
    l: number, lin: TrainLinear, x: Tensor, xForGrad: () => Tensor, dy: Tensor, dInput: Tensor, accumulate: boolean,
    a: LayerActivations, ctx: BatchContext,
  ): Promise<void> {
    const be = this.backend;
    be.matmul(dy, lin.matmulWeight, dInput, { accumulate }); // dX = dY · W
    if (lin.grad) be.matmul(dy, xForGrad(), lin.grad, { transA: true, accumulate: true }); // dW += dYᵀ · X
    const adapter = lin.lora;
    if (!adapter) return;
    const s = this.loraScale, T = ctx.rows, r = this.lora!.rank;
    const u = a.loraU.get(adapter.module)!;
    const xd = await this.droppedInput(adapter, x, ctx);
    const duT = this.rows("loraDu", r, T);
    be.matmul(dy, this.gradOperand(u, "loraU"), adapter.gradB, { transA: true, accumulate: true, alpha: s }); // dB += s · dYᵀ · u
    be.matmul(dy, adapter.bMatmul, duT, { alpha: s }); // du = s · dY · B
    const xdForGrad = xd === x ? xForGrad() : this.gradOperand(xd, `loraX${lin.inFeatures}`);
    be.matmul(duT, xdForGrad, adapter.gradA, { transA: true, accumulate: true }); // dA += duᵀ · x̃
    if (xd === x) {
      be.matmul(duT, adapter.aMatmul, dInput, { accumulate: true }); // dX += du · A
      return;
    }
    // With dropout, x̃ = x ⊙ mask/(1−p), so dX += (du · A) ⊙ mask/(1−p).
    const tmp = this.rows(`loraDx${lin.inFeatures}`, lin.inFeatures, T);
    be.matmul(duT, adapter.aMatmul, tmp);
    const masked = await this.applyDropoutMask(adapter, tmp, ctx);
    be.add(dInput, masked, dInput);
  }

  /** x̃ = dropout(x) (x itself when dropout is off or not training). Cached per (layer, module) and batch. */
  private async droppedInput(adapter: LoraAdapter, x: Tensor, ctx: BatchContext): Promise<Tensor> {
    if (!ctx.training || this.lora!.dropout === 0) return x;
    const key = `${adapter.layer}:${adapter.module}`;
    const cached = ctx.dropped.get(key);
    if (cached) return cached;
    const t = await this.applyDropoutMask(adapter, x, ctx);
    ctx.dropped.set(key, t);
    return t;
  }

  /**
   * x ⊙ mask/(1−p) as a new tensor, the mask a pure function of (seed, batch serial, layer, module, index),
   * so a recomputed forward and the backward see the same mask. Runs on the host: the Backend has no
   * elementwise product (on the CPU backend a download is a copy).
   */
  private async applyDropoutMask(adapter: LoraAdapter, x: Tensor, ctx: BatchContext): Promise<Tensor> {
    const p = this.lora!.dropout, keep = 1 / (1 - p);
    const values = (await this.backend.download(x)) as Float32Array;
    const stream = mix32(mix32(mix32(this.seed ^ 0x6c6f7261) ^ ctx.serial) ^ (adapter.layer * 8 + LORA_TARGET_MODULES.indexOf(adapter.module)));
    const threshold = p * 4294967296;
    for (let i = 0; i < values.length; i++) {
      values[i] = mix32(stream ^ mix32(i + 0x9e3779b9)) < threshold ? 0 : values[i] * keep;
    }
    const t = this.backend.upload(values, "f32", x.shape);
    ctx.temporaries.push(t);
    return t;
  }
}

function checkBatch(batch: PackedBatch, config: LlamaConfig, maxTokens: number): void {
  const T = batch.ids.length;
  if (T === 0) throw new Error("training batch is empty");
  if (T > maxTokens) throw new Error(`training batch has ${T} tokens, more than maxTokens ${maxTokens}`);
  if (batch.avoid && batch.avoid.length !== T) throw new Error(`training batch: avoid has ${batch.avoid.length} entries for ${T} tokens`);
  for (const [name, arr] of [["positions", batch.positions], ["keyStart", batch.keyStart], ["keyEnd", batch.keyEnd], ["targets", batch.targets]] as const) {
    if (arr.length !== T) throw new Error(`training batch: ${name} has ${arr.length} entries for ${T} tokens`);
  }
  for (let t = 0; t < T; t++) {
    const id = batch.ids[t], y = batch.targets[t];
    if (id < 0 || id >= config.vocabSize) throw new Error(`training batch: token ${t} has id ${id}, outside [0, ${config.vocabSize})`);
    if (y < -1 || y >= config.vocabSize) throw new Error(`training batch: target ${t} is ${y}, outside [-1, ${config.vocabSize})`);
    if (!(batch.keyStart[t] <= t && batch.keyEnd[t] === t + 1)) throw new Error(`training batch: token ${t} must attend [start ≤ ${t}, ${t + 1})`);
  }
}

/** Random-initialised host weights (the values `model init` writes, f32), for tests and benchmarks without files. */
export function randomLlamaWeights(config: LlamaConfig, seed: number): LlamaWeights {
  const shapes = expectedTensorShapes(config);
  const make = (name: string): HostTensor => {
    const shape = shapes.get(name)!;
    return { dtype: "f32", shape, data: initialTensorValues(name, shape, seed) };
  };
  const embedTokens = make("model.embed_tokens.weight");
  return {
    embedTokens,
    layers: Array.from({ length: config.numLayers }, (_, l) => {
      const p = `model.layers.${l}.`;
      return {
        inputNorm: make(`${p}input_layernorm.weight`),
        q: make(`${p}self_attn.q_proj.weight`),
        k: make(`${p}self_attn.k_proj.weight`),
        v: make(`${p}self_attn.v_proj.weight`),
        o: make(`${p}self_attn.o_proj.weight`),
        postNorm: make(`${p}post_attention_layernorm.weight`),
        gate: make(`${p}mlp.gate_proj.weight`),
        up: make(`${p}mlp.up_proj.weight`),
        down: make(`${p}mlp.down_proj.weight`),
      };
    }),
    norm: make("model.norm.weight"),
    lmHead: config.tieWordEmbeddings ? embedTokens : make("lm_head.weight"),
  };
}

/**
 * Limits before allocation (memory.ts), before TrainableLlama makes any buffer: full training holds f32
 * master copies of every weight (of every other weight, and the frozen parts as loaded, when some are frozen),
 * LoRA the base as loaded (mapped on the CPU; bf16 copies of its Linear
 * weights with bf16 matmuls when the checkpoint is not bf16) and the adapters; both a gradient and AdamW's
 * two moments per trainable element, bf16 copies of the trainable matrices with bf16 matmuls, and the
 * per-token buffers at maxTokens.
 */
function checkTrainingMemory(config: LlamaConfig, weights: LlamaWeights, planned: readonly (ParameterKind & { size: number })[],
  options: { lora: LoraConfig | null; frozen: ReadonlySet<FrozenPart>; bf16: boolean; maxTokens: number; recompute: boolean }): void {
  const trainable = planned.reduce((sum, p) => sum + p.size, 0);
  const copies = planned.reduce((sum, p) => sum + (p.copy ? p.size : 0), 0);
  const parts: Record<string, number> = {};
  const fresh = ["trainable weights", "bf16 copies", "gradients", "AdamW moments", "activations"];
  // Weights that do not train stay as loaded (mapped on the CPU); their Linear weights get bf16 copies with bf16
  // matmuls when they are not bf16 already.
  const frozenLinearKeys = options.lora ? LAYER_LINEARS : LAYER_LINEARS.filter((key) => linearFrozen(key, options.frozen));
  const frozenLinears = weights.layers.flatMap((w) => frozenLinearKeys.map((key) => w[key]));
  const frozen = new Set<HostTensor>(frozenLinears);
  if (options.lora) for (const t of [weights.norm, ...weights.layers.flatMap((w) => [w.inputNorm, w.postNorm])]) frozen.add(t);
  if (options.lora || options.frozen.has("embeddings")) for (const t of [weights.embedTokens, weights.lmHead]) frozen.add(t);
  if (frozen.size > 0) {
    parts["frozen weights (as loaded)"] = [...frozen].reduce((sum, t) => sum + t.data.length * dtypeBytes(t.dtype), 0);
    if (options.bf16) {
      parts["bf16 copies of frozen weights"] = frozenLinears.filter((t) => t.dtype !== "bf16").reduce((sum, t) => sum + t.data.length * 2, 0);
      fresh.push("bf16 copies of frozen weights");
    }
  }
  parts["trainable weights"] = 4 * trainable;
  parts["bf16 copies"] = 2 * copies;
  parts.gradients = 4 * trainable;
  parts["AdamW moments"] = 8 * trainable;
  parts.activations = trainingActivationBytes(config, options.maxTokens, {
    recompute: options.recompute,
    loraRank: options.lora?.rank ?? 0,
    loraModules: options.lora?.targetModules.length ?? 0,
    logitRows: LOGIT_CHUNK_ROWS,
  });
  checkMemory(`training (${options.lora ? `LoRA r=${options.lora.rank}` : "full"}, ${options.maxTokens} tokens per micro-batch)`, { parts, fresh });
}

/**
 * The trainable tensors TrainableLlama's constructor will add, by kind (what sizes the parameter store):
 * full training — every weight (matrices decay and, with bf16 matmuls, have bf16 copies, the embedding only
 * when lm_head is tied to it; norm weights neither), less the frozen parts; LoRA — A [r, in] and B [out, r] of
 * every target module.
 */
function plannedParameters(config: LlamaConfig, weights: LlamaWeights, full: boolean, frozen: ReadonlySet<FrozenPart>,
  lora: LoraConfig | null, bf16: boolean): (ParameterKind & { size: number })[] {
  const planned: (ParameterKind & { size: number })[] = [];
  const add = (shape: readonly number[], decay: boolean, matmul: boolean) =>
    planned.push({ size: shape.reduce((x, y) => x * y, 1), decay, copy: bf16 && matmul });
  if (full) {
    if (!frozen.has("embeddings")) add(weights.embedTokens.shape, true, config.tieWordEmbeddings);
    for (const w of weights.layers) {
      for (const key of LAYER_LINEARS) if (!linearFrozen(key, frozen)) add(w[key].shape, true, true);
      add(w.inputNorm.shape, false, false);
      add(w.postNorm.shape, false, false);
    }
    add(weights.norm.shape, false, false);
    if (!config.tieWordEmbeddings && !frozen.has("embeddings")) add(weights.lmHead.shape, true, true);
  } else if (lora) {
    for (const w of weights.layers) {
      for (const key of LAYER_LINEARS) {
        if (!lora.targetModules.includes(MODULE_OF[key])) continue;
        const [out, inFeatures] = w[key].shape;
        add([lora.rank, inFeatures], true, true);
        add([out, lora.rank], true, true);
      }
    }
  }
  return planned;
}
