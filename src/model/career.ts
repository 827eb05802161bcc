/**
 * CAREER (Vafa et al.): a transformer over occupation tokens with covariate embeddings and a two-stage
 * stay/move head, run through the Backend (its training loop is train/career.ts).
 *
 * A person is one sequence with one position per wave. The token at wave w is the outcome of wave w − 1
 * (START at w = 0); added to its embedding are embeddings of the wave's covariates — calendar year, age,
 * education, sex, race, region. Positions are the wave index, through RoPE. The decoder layers are the
 * Llama ones (pre-RMSNorm, causal self-attention, SwiGLU MLP): a {@link TrainableLlama} with vocabulary
 * K + 1 (the K outcomes, plus START on the input side) and hooks for the covariates and the head. People
 * are packed into one batch with one key range per person, so nobody attends anyone else's waves.
 *
 * Two-stage head on the final hidden state: LM-head row k < K gives the move logit z_k, row K the stay
 * logit s = w_s·h.
 *   first wave (no previous outcome):  P(j) = softmax(z)_j
 *   previous outcome p:                P(p) = σ(s);   P(j ≠ p) = (1 − σ(s)) · exp(z_j) / Σ_{k≠p} exp(z_k)
 * Negative log-likelihood of the true outcome y and its gradient (ℓ = log Σ_{k≠p} exp z_k, q_j = exp(z_j − ℓ)):
 *   first wave: L = lse(z) − z_y;             ∂L/∂z = softmax(z) − onehot(y);           ∂L/∂s = 0
 *   y = p:      L = softplus(−s);             ∂L/∂z = 0;                                ∂L/∂s = σ(s) − 1
 *   y ≠ p:      L = softplus(s) + ℓ − z_y;    ∂L/∂z_j = q_j − [j = y] (j ≠ p), ∂L/∂z_p = 0;  ∂L/∂s = σ(s)
 * The head runs on the host in float64 (K + 1 ≈ 345 logits a row: cheap next to the layers).
 */
import type { Backend, Tensor } from "../engine/backend.js";
import { RACES, REGIONS, SEXES, type PersonRecord, type Wave } from "../data/panel.js";
import type { OccupationTaxonomy } from "../data/taxonomy.js";
import { epochOrder, packInOrder } from "../util/packing.js";
import type { LlamaConfig } from "../io/llama-config.js";
import { randomLlamaWeights, TrainableLlama, type PackedBatch, type TrainableParameter } from "./llama-train.js";
import { parameterUnits, writeInto } from "./parameter-groups.js";

/** Transformer size. The head dimension hidden / heads must be even (RoPE). */
export interface CareerConfig {
  layers: number;
  hidden: number;
  heads: number;
  /** Width of the SwiGLU MLP. */
  ffn: number;
}

/** `paper` is the size of Vafa et al.; the smaller ones are for demos and tests. */
export const CAREER_PRESETS = {
  paper: { layers: 12, hidden: 192, heads: 3, ffn: 768 },
  small: { layers: 4, hidden: 128, heads: 4, ffn: 512 },
  tiny: { layers: 2, hidden: 64, heads: 2, ffn: 256 },
} as const satisfies Record<string, CareerConfig>;
export type CareerPresetName = keyof typeof CAREER_PRESETS;
export const CAREER_PRESET_NAMES = Object.keys(CAREER_PRESETS) as CareerPresetName[];

/** The covariates embedded at every wave: table rows and the row of a person-year (clamped into range). */
export const CAREER_COVARIATES: readonly { name: string; rows: number; row: (person: PersonRecord, wave: Wave) => number }[] = [
  { name: "year", rows: 101, row: (_, wave) => clamp(wave.year - 1940, 0, 100) },
  { name: "age", rows: 100, row: (person, wave) => clamp(wave.year - person.birthYear, 0, 99) },
  { name: "education", rows: 5, row: (_, wave) => wave.education },
  { name: "sex", rows: SEXES.length, row: (person) => SEXES.indexOf(person.sex) },
  { name: "race", rows: RACES.length, row: (person) => RACES.indexOf(person.race) },
  { name: "region", rows: REGIONS.length, row: (person) => REGIONS.indexOf(person.region) },
];

function clamp(x: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, Math.round(x)));
}

/** The Llama hyper-parameters of a CAREER config over K outcomes. */
export function careerLlamaConfig(config: CareerConfig, outcomes: number): LlamaConfig {
  const { layers, hidden, heads, ffn } = config;
  for (const [name, value] of Object.entries(config)) {
    if (!Number.isInteger(value) || value < 1) throw new Error(`career: ${name} must be a positive integer, got ${value}`);
  }
  if (hidden % heads !== 0 || (hidden / heads) % 2 !== 0) throw new Error(`career: hidden ${hidden} / heads ${heads} must be an even integer (RoPE)`);
  return {
    hiddenSize: hidden, intermediateSize: ffn, numLayers: layers, numHeads: heads, numKvHeads: heads, headDim: hidden / heads,
    vocabSize: outcomes + 1, maxPositionEmbeddings: 4096, rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: null,
    tieWordEmbeddings: false, bosTokenId: null, eosTokenIds: [], torchDtype: null,
  };
}

// ---------------------------------------------------------------------------------------------------
// The two-stage head (host, float64)

function softplus(x: number): number {
  return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}

function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/**
 * Log-probabilities of the K outcomes under the two-stage head. `logits` holds K move logits then the stay
 * logit from `offset`; `previous` is the previous outcome's index, −1 at a first wave.
 */
export function twoStageLogProbabilities(logits: ArrayLike<number>, offset: number, K: number, previous: number, out: Float64Array): void {
  let max = -Infinity;
  for (let j = 0; j < K; j++) if (j !== previous && logits[offset + j] > max) max = logits[offset + j];
  let sum = 0;
  for (let j = 0; j < K; j++) if (j !== previous) sum += Math.exp(logits[offset + j] - max);
  const lse = max + Math.log(sum);
  if (previous < 0) {
    for (let j = 0; j < K; j++) out[j] = logits[offset + j] - lse;
    return;
  }
  const s = logits[offset + K];
  const logMove = -softplus(s); // log(1 − σ(s))
  for (let j = 0; j < K; j++) out[j] = logMove + logits[offset + j] - lse;
  out[previous] = -softplus(-s); // log σ(s)
}

/**
 * gradScale · ∂(−log P(target))/∂[z, s] into grad[gradOffset, gradOffset + K + 1), given the row's
 * log-probabilities from {@link twoStageLogProbabilities}.
 */
export function twoStageGradient(
  logProbabilities: Float64Array, stayLogit: number, K: number, previous: number, target: number, gradScale: number,
  grad: Float64Array, gradOffset: number,
): void {
  if (previous < 0) {
    for (let j = 0; j < K; j++) grad[gradOffset + j] = gradScale * (Math.exp(logProbabilities[j]) - (j === target ? 1 : 0));
    grad[gradOffset + K] = 0;
    return;
  }
  const stay = sigmoid(stayLogit);
  if (target === previous) {
    for (let j = 0; j < K; j++) grad[gradOffset + j] = 0;
    grad[gradOffset + K] = gradScale * (stay - 1);
    return;
  }
  const logMove = -softplus(stayLogit);
  for (let j = 0; j < K; j++) grad[gradOffset + j] = gradScale * (Math.exp(logProbabilities[j] - logMove) - (j === target ? 1 : 0));
  grad[gradOffset + previous] = 0;
  grad[gradOffset + K] = gradScale * stay;
}

// ---------------------------------------------------------------------------------------------------
// Sequences and batches

/** One person as model input: token and covariate rows per wave, and the outcome index to predict. */
export interface CareerSequence {
  tokens: Int32Array;
  targets: Int32Array;
  /** Per covariate of {@link CAREER_COVARIATES}, the table row of every wave. */
  covariates: Int32Array[];
}

/** A packed batch with the covariate rows of every token. */
export interface CareerBatch extends PackedBatch {
  covariates: Int32Array[];
}

export function encodeCareer(person: PersonRecord, taxonomy: OccupationTaxonomy): CareerSequence {
  const K = taxonomy.size, n = person.waves.length;
  const tokens = new Int32Array(n), targets = new Int32Array(n);
  person.waves.forEach((wave, w) => {
    const index = taxonomy.indexOf(wave.occupation);
    if (index === undefined) throw new Error(`career: person ${person.personId}, ${wave.year}: unknown outcome code ${wave.occupation}`);
    targets[w] = index;
    tokens[w] = w === 0 ? K : targets[w - 1];
  });
  const covariates = CAREER_COVARIATES.map((c) => Int32Array.from(person.waves, (wave) => c.row(person, wave)));
  return { tokens, targets, covariates };
}

/** Lay people end to end: positions restart per person and each attends only its own earlier waves. */
export function packCareerBatch(sequences: readonly CareerSequence[], members: readonly number[], serial: number): CareerBatch {
  const total = members.reduce((n, i) => n + sequences[i].tokens.length, 0);
  const batch: CareerBatch = {
    ids: new Int32Array(total), positions: new Int32Array(total), keyStart: new Int32Array(total), keyEnd: new Int32Array(total),
    targets: new Int32Array(total), targetCount: total, serial,
    covariates: CAREER_COVARIATES.map(() => new Int32Array(total)),
  };
  let row = 0;
  for (const index of members) {
    const s = sequences[index], start = row;
    for (let w = 0; w < s.tokens.length; w++, row++) {
      batch.ids[row] = s.tokens[w];
      batch.targets[row] = s.targets[w];
      batch.positions[row] = w;
      batch.keyStart[row] = start;
      batch.keyEnd[row] = row + 1;
      s.covariates.forEach((rows, c) => (batch.covariates[c][row] = rows[w]));
    }
  }
  return batch;
}

/** Greedy batches of whole people (in the given order) of at most `batchTokens` waves each. */
export function careerBatches(sequences: readonly CareerSequence[], order: ArrayLike<number>, batchTokens: number, firstSerial = 0): CareerBatch[] {
  return careerGroups(sequences, order, batchTokens).map((members, i) => packCareerBatch(sequences, members, firstSerial + i));
}

/** Members of each batch (people without waves left out). */
export function careerGroups(sequences: readonly CareerSequence[], order: ArrayLike<number>, batchTokens: number): number[][] {
  const nonEmpty = Array.from(order).filter((i) => sequences[i].tokens.length > 0);
  const longest = sequences.reduce((m, s) => Math.max(m, s.tokens.length), 0);
  if (longest > batchTokens) throw new Error(`career: a person has ${longest} waves, more than the batch budget of ${batchTokens} waves`);
  return packInOrder(sequences.map((s) => s.tokens.length), nonEmpty, batchTokens);
}

// ---------------------------------------------------------------------------------------------------
// The model

export interface CareerModelOptions {
  /** Seed of the initial weights. */
  seed: number;
  /** Most waves in one batch. */
  maxTokens: number;
  recompute?: boolean;
  /**
   * How the head reads logits and writes their gradient (default: download, and upload as f32). A float64
   * test backend passes exact ones so whole-model finite differences see no f32 rounding.
   */
  host?: { read(t: Tensor): Promise<ArrayLike<number>>; write(values: Float64Array, shape: readonly number[]): Tensor };
}

export interface CareerOutcome {
  /** Σ −log P(true outcome) over the batch's waves. */
  lossSum: number;
  count: number;
}

export class CareerModel {
  readonly llama: TrainableLlama;
  /** Every trainable tensor: the Llama's (HF names) and the covariate tables (`career.covariate.*`). */
  readonly parameters: TrainableParameter[];
  readonly outcomes: number;
  private readonly covariateTables: TrainableParameter[];
  private readonly scratch: Tensor;
  private readonly host: NonNullable<CareerModelOptions["host"]>;
  private inputIds: Tensor[] = [];
  /** When set, the head stores each row's log-probabilities here (by batch row). */
  private capture: Float64Array[] | null = null;

  constructor(
    readonly backend: Backend,
    readonly config: CareerConfig,
    readonly taxonomy: OccupationTaxonomy,
    readonly options: CareerModelOptions,
  ) {
    const be = backend;
    this.outcomes = taxonomy.size;
    const llamaConfig = careerLlamaConfig(config, this.outcomes);
    this.host = options.host ?? {
      read: (t) => be.download(t),
      write: (values, shape) => be.upload(Float32Array.from(values), "f32", shape),
    };
    this.llama = new TrainableLlama(be, llamaConfig, randomLlamaWeights(llamaConfig, options.seed), {
      mode: { kind: "full" },
      maxTokens: options.maxTokens,
      recompute: options.recompute,
      seed: options.seed,
      hooks: {
        addInput: (x0, batch) => this.addCovariates(x0, batch as CareerBatch),
        inputBackward: (dx0) => this.covariateBackward(dx0),
        loss: (logits, batch, start, gradScale) => this.headLoss(logits, batch, start, gradScale),
      },
    });
    // Covariate tables start at zero: a covariate value never seen in training adds nothing.
    this.covariateTables = CAREER_COVARIATES.map((c) => {
      const value = be.alloc("f32", [c.rows, config.hidden]);
      const grad = be.alloc("f32", [c.rows, config.hidden]);
      be.fill(value, 0);
      be.fill(grad, 0);
      return { name: `career.covariate.${c.name}.weight`, value, grad, decay: true, version: 0 };
    });
    this.parameters = [...this.llama.parameters, ...this.covariateTables];
    this.scratch = be.alloc("f32", [options.maxTokens, config.hidden]);
  }

  zeroGradients(): void {
    for (const unit of parameterUnits(this.parameters)) this.backend.fill(unit.grad, 0);
  }

  /** Forward and backward: gradients of gradScale · Σ losses are accumulated into every parameter. */
  async forwardBackward(batch: CareerBatch, gradScale: number): Promise<CareerOutcome> {
    const { lossSum, targetCount } = await this.llama.forwardBackward(batch, gradScale);
    return { lossSum, count: targetCount };
  }

  async evaluate(batch: CareerBatch): Promise<CareerOutcome> {
    const { lossSum, targetCount } = await this.llama.evaluate(batch);
    return { lossSum, count: targetCount };
  }

  /** Log-probabilities of the K outcomes at every row of the batch. */
  async logProbabilities(batch: CareerBatch): Promise<Float64Array[]> {
    this.capture = new Array<Float64Array>(batch.ids.length);
    try {
      await this.llama.evaluate(batch);
      return this.capture;
    } finally {
      this.capture = null;
    }
  }

  /** Current values of every parameter on the host (a snapshot, e.g. of the best epoch). */
  async parameterValues(): Promise<Map<string, Float32Array>> {
    const out = new Map<string, Float32Array>();
    for (const p of this.parameters) out.set(p.name, (await this.backend.download(p.value)) as Float32Array);
    return out;
  }

  /** Overwrite every parameter from a snapshot of {@link parameterValues}. */
  setParameterValues(values: Map<string, Float32Array>): void {
    for (const p of this.parameters) {
      const v = values.get(p.name);
      if (!v || v.length !== p.value.size) throw new Error(`career: no saved values of the right size for ${p.name}`);
      writeInto(this.backend, p.value, v);
    }
  }

  free(): void {
    this.releaseInputs();
    this.llama.free();
    for (const p of this.covariateTables) {
      this.backend.free(p.value);
      this.backend.free(p.grad);
    }
    this.backend.free(this.scratch);
  }

  private releaseInputs(): void {
    for (const t of this.inputIds) this.backend.free(t);
    this.inputIds = [];
  }

  /** x0 += Σ_c table_c[row_c(t)]. */
  private addCovariates(x0: Tensor, batch: CareerBatch): void {
    const be = this.backend, T = batch.ids.length;
    if (batch.covariates?.length !== CAREER_COVARIATES.length) throw new Error("career: batch has no covariate rows (use packCareerBatch)");
    this.releaseInputs();
    const scratch = be.sliceRows(this.scratch, 0, T);
    this.covariateTables.forEach((table, c) => {
      const ids = be.upload(batch.covariates[c], "i32", [T]);
      this.inputIds.push(ids);
      be.embedding(ids, table.value, scratch);
      be.add(x0, scratch, x0);
    });
  }

  /** dTable_c[row_c(t)] += dx0[t]. */
  private covariateBackward(dx0: Tensor): void {
    this.covariateTables.forEach((table, c) => this.backend.embeddingBackward(this.inputIds[c], dx0, table.grad));
  }

  /** The two-stage NLL of each row, its gradient written over the logits (see the file comment). */
  private async headLoss(logits: Tensor, batch: PackedBatch, start: number, gradScale: number): Promise<Float64Array> {
    const K = this.outcomes, V = K + 1, rows = logits.shape[0];
    const values = await this.host.read(logits);
    const losses = new Float64Array(rows);
    const grad = gradScale !== 0 ? new Float64Array(rows * V) : null;
    const logp = new Float64Array(K);
    for (let r = 0; r < rows; r++) {
      const y = batch.targets[start + r];
      if (y < 0 && !this.capture) continue;
      const token = batch.ids[start + r];
      const previous = token === K ? -1 : token;
      twoStageLogProbabilities(values, r * V, K, previous, logp);
      if (this.capture) this.capture[start + r] = logp.slice();
      if (y < 0) continue;
      losses[r] = -logp[y];
      if (grad) twoStageGradient(logp, values[r * V + K], K, previous, y, gradScale, grad, r * V);
    }
    if (grad) {
      const staged = this.host.write(grad, [rows, V]);
      this.backend.scale(staged, 1, logits);
      this.backend.free(staged);
    } else {
      this.backend.fill(logits, 0);
    }
    return losses;
  }
}

/** Log-probabilities [person][wave][outcome] for the people, in order. */
export async function careerLogProbabilities(
  model: CareerModel, people: readonly PersonRecord[], batchTokens: number, onProgress?: (personYearsDone: number) => void,
): Promise<Float64Array[][]> {
  const sequences = people.map((p) => encodeCareer(p, model.taxonomy));
  const out: Float64Array[][] = new Array(people.length);
  for (let i = 0; i < people.length; i++) out[i] = [];
  const groups = careerGroups(sequences, epochOrder(sequences.length, 0, 0, false), batchTokens);
  let done = 0;
  for (const members of groups) {
    const rows = await model.logProbabilities(packCareerBatch(sequences, members, 0));
    let row = 0;
    for (const i of members) {
      const n = sequences[i].tokens.length;
      out[i] = rows.slice(row, row + n);
      row += n;
      done += n;
    }
    onProgress?.(done);
  }
  return out;
}
