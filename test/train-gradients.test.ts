/**
 * Whole-model gradients of the training forward/backward (src/model/llama-train.ts) against finite
 * differences of the loss, for full training and for LoRA (A and B, with dropout and rsLoRA).
 *
 * In float64 (test/reference-backend.ts): every op runs in f64, so the loss is exact to ~1e-15 and the
 * central difference (L(θ+h) − L(θ−h)) / 2h with h = 1e-5 has truncation error ~h²·|L'''| ≈ 1e-10 and
 * rounding error ~1e-15/1e-5 = 1e-10; a tolerance of 1e-6 absolute + 1e-5 relative is four orders above
 * both and far below any real mistake (a wrong sign, a missing term or a transposed index moves the
 * gradient by O(|g|)).
 *
 * On the f32 CPU backend: the analytic gradients are compared with the float64 ones as a whole (relative
 * norm error ≤ 1e-4: f32 rounding through ~20 ops of ~100-term sums gives ~1e-6), and spot-checked
 * against f32 finite differences with h = 1e-2: the loss (~2.4) is known to ~3e-7, so the difference
 * quotient carries ~3e-5 of noise, plus ~h²·|L'''| ≈ 1e-4 of truncation; tolerance 1e-3 absolute + 5e-2
 * relative.
 */
import { describe, expect, it } from "vitest";
import type { Backend } from "../src/engine/backend.js";
import { createCpuBackend } from "../src/engine/cpu/backend.js";
import type { LlamaConfig } from "../src/io/llama-config.js";
import { TrainableLlama, parseFrozenParts, randomLlamaWeights, type FrozenPart, type PackedBatch, type TrainingMode } from "../src/model/llama-train.js";
import type { LoraConfig } from "../src/io/lora-config.js";
import { initialLoraMatrices } from "../src/model/lora.js";
import { buildPackedBatch } from "../src/train/batches.js";
import { ReferenceBackend } from "./reference-backend.js";
import { makeRandom } from "./op-suite.js";
import { relativeError } from "./reference.js";

const SMALL: LlamaConfig = {
  hiddenSize: 8, intermediateSize: 12, numLayers: 2, numHeads: 2, numKvHeads: 1, headDim: 4, vocabSize: 11,
  maxPositionEmbeddings: 64, rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: null, tieWordEmbeddings: false,
  bosTokenId: 1, eosTokenIds: [2], torchDtype: null,
};

/**
 * Two documents packed together; some positions excluded from the loss. With `unlikelihood`, two of the
 * excluded positions instead take the loss −log(1 − p) of a token they must not hold (TrainingSequence.avoid).
 */
function fixtureBatch(config: LlamaConfig, unlikelihood = false): PackedBatch {
  const random = makeRandom(11);
  const doc = (n: number, masked: number[], avoided: number[]) => {
    const ids = Int32Array.from({ length: n }, () => Math.floor(random() * config.vocabSize));
    const lossMask = new Uint8Array(n).fill(1, 1);
    for (const i of masked) lossMask[i] = 0;
    if (!unlikelihood) return { ids, lossMask };
    const avoid = new Int32Array(n).fill(-1);
    for (const i of avoided) avoid[i] = (ids[i] + 1 + Math.floor(random() * (config.vocabSize - 1))) % config.vocabSize;
    return { ids, lossMask, avoid };
  };
  const batch = buildPackedBatch([doc(6, [2], [2]), doc(7, [5, 6], [6])], [0, 1], 3);
  if (unlikelihood) expect(batch.avoid?.reduce((n, a) => n + a, 0)).toBe(2);
  return batch;
}

function loraMode(dropout: number): TrainingMode {
  const lora: LoraConfig = { rank: 3, alpha: 5, dropout, useRslora: true, targetModules: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] };
  return { kind: "lora", lora };
}

/** Fresh LoRA values with B made non-zero (a zero B gives A a zero gradient, which checks nothing). */
function loraValues(config: LlamaConfig, mode: TrainingMode) {
  if (mode.kind !== "lora") return undefined;
  const random = makeRandom(5);
  return initialLoraMatrices(config, mode.lora, 9).map((m) => ({ ...m, b: Float32Array.from(m.b, () => random() - 0.5) }));
}

function makeModel(backend: Backend, config: LlamaConfig, mode: TrainingMode, recompute = false): TrainableLlama {
  const readLosses = backend instanceof ReferenceBackend ? async (t: Parameters<ReferenceBackend["downloadF64"]>[0]) => backend.downloadF64(t) : undefined;
  return new TrainableLlama(backend, config, randomLlamaWeights(config, 7), {
    mode, maxTokens: 32, recompute, seed: 4, loraMatrices: loraValues(config, mode), readLosses,
  });
}

async function meanLoss(model: TrainableLlama, batch: PackedBatch): Promise<number> {
  // forwardBackward (not evaluate) so the same dropout masks apply; the gradients it adds are ignored.
  const { lossSum, targetCount } = await model.forwardBackward(batch, 0);
  return lossSum / targetCount;
}

/** Analytic gradients of the mean loss, by parameter name. */
async function analyticGradients(backend: Backend, model: TrainableLlama, batch: PackedBatch): Promise<Map<string, Float32Array | Float64Array>> {
  model.zeroGradients();
  await model.forwardBackward(batch, 1 / batch.targetCount);
  const out = new Map<string, Float32Array | Float64Array>();
  for (const p of model.parameters) {
    out.set(p.name, backend instanceof ReferenceBackend ? backend.downloadF64(p.grad) : ((await backend.download(p.grad)) as Float32Array));
  }
  return out;
}

/**
 * With LoRA dropout the dropped-out input x̃ makes a host round trip through f32 (the Backend has no
 * elementwise product), so the loss carries f32 rounding of ~|∂L/∂x̃|·|x̃|·6e-8 ≈ 1e-8 that is not smooth
 * in θ. Those runs use h = 1e-3 (noise 1e-8 / 2e-3 = 5e-6, truncation ~1e-6·|L'''| ≈ 1e-5) and a
 * tolerance of 5e-5 + 1e-3·|g|.
 */
async function checkFiniteDifferences(mode: TrainingMode, config: LlamaConfig, recompute: boolean, unlikelihood = false): Promise<number> {
  const roundTrip = mode.kind === "lora" && mode.lora.dropout > 0;
  const backend = new ReferenceBackend();
  const model = makeModel(backend, config, mode, recompute);
  const batch = fixtureBatch(config, unlikelihood);
  const grads = await analyticGradients(backend, model, batch);
  const random = makeRandom(23);
  const h = roundTrip ? 1e-3 : 1e-5;
  const [absolute, relative] = roundTrip ? [5e-5, 1e-3] : [1e-6, 1e-5];
  let checked = 0;
  for (const p of model.parameters) {
    const g = grads.get(p.name)!;
    for (let trial = 0; trial < 3; trial++) {
      const index = Math.floor(random() * p.value.size);
      const original = backend.peek(p.value, index);
      backend.poke(p.value, index, original + h);
      const plus = await meanLoss(model, batch);
      backend.poke(p.value, index, original - h);
      const minus = await meanLoss(model, batch);
      backend.poke(p.value, index, original);
      const numeric = (plus - minus) / (2 * h);
      expect(Math.abs(numeric - g[index]), `${p.name}[${index}]: analytic ${g[index]} vs numeric ${numeric}`)
        .toBeLessThan(absolute + relative * Math.abs(numeric));
      checked++;
    }
  }
  return checked;
}

describe("training gradients (float64 reference backend) match finite differences", () => {
  it("full training: every parameter (untied embeddings)", async () => {
    const checked = await checkFiniteDifferences({ kind: "full" }, SMALL, false);
    expect(checked).toBe(3 * (1 + 9 * 2 + 1 + 1)); // embed, 9 per layer, norm, lm_head
  });

  it("full training with tied embeddings and activation recomputation", async () => {
    await checkFiniteDifferences({ kind: "full" }, { ...SMALL, tieWordEmbeddings: true }, true);
  });

  it("full training with parts frozen: those parts have no parameter, the rest the gradients of full training", async () => {
    const backend = new ReferenceBackend();
    const batch = fixtureBatch(SMALL);
    const cases: [FrozenPart[], RegExp, number][] = [
      [["embeddings"], /embed_tokens|lm_head/, 9 * 2 + 1], // 9 per layer, the final norm
      [["attention"], /self_attn/, 2 + 5 * 2 + 1], // embed, lm_head, 5 per layer (2 norms, 3 MLP), final norm
      [["embeddings", "mlp"], /embed_tokens|lm_head|mlp/, 6 * 2 + 1],
    ];
    for (const [frozenParts, frozenNames, count] of cases) {
      for (const config of [SMALL, { ...SMALL, tieWordEmbeddings: true }]) {
        const frozen = makeModel(backend, config, { kind: "full", frozen: frozenParts });
        const names = frozen.parameters.map((p) => p.name);
        expect(names.filter((n) => frozenNames.test(n)), frozenParts.join()).toEqual([]);
        expect(names.length).toBe(count - (config.tieWordEmbeddings && !frozenParts.includes("embeddings") ? 1 : 0));
        const all = await analyticGradients(backend, makeModel(backend, config, { kind: "full" }), batch);
        const some = await analyticGradients(backend, frozen, batch);
        for (const [name, g] of some) expect(Array.from(g), name).toEqual(Array.from(all.get(name)!));
      }
      expect(await checkFiniteDifferences({ kind: "full", frozen: frozenParts }, SMALL, false)).toBe(3 * count);
    }
    expect(() => makeModel(backend, SMALL, { kind: "full", frozen: ["heads" as FrozenPart] })).toThrow(/frozen parts are embeddings, attention, mlp; got heads/);
    expect(parseFrozenParts(" mlp,attention,mlp ")).toEqual(["attention", "mlp"]);
    expect(() => parseFrozenParts("embedding")).toThrow(/unknown part "embedding" \(parts: embeddings, attention, mlp\)/);
  });

  it("full training with unlikelihood targets (tokens a position must not hold) next to the ordinary ones", async () => {
    // The loss of an avoid row is −log(1 − p), p = the probability that the same row as an ordinary target gets.
    const backend = new ReferenceBackend();
    const model = makeModel(backend, SMALL, { kind: "full" });
    const batch = fixtureBatch(SMALL, true);
    const avoided = await model.evaluate(batch);
    const ordinary = await model.evaluate({ ...batch, avoid: undefined });
    const rows = [...batch.avoid!.keys()].filter((t) => batch.avoid![t]);
    for (const t of rows) expect(avoided.rowLosses[t]).toBeCloseTo(-Math.log(1 - Math.exp(-ordinary.rowLosses[t])), 12);
    for (const t of batch.targets.keys()) if (!rows.includes(t)) expect(avoided.rowLosses[t]).toBe(ordinary.rowLosses[t]);
    await checkFiniteDifferences({ kind: "full" }, SMALL, false, true);
    await checkFiniteDifferences(loraMode(0), SMALL, false, true);
  });

  it("LoRA A and B on all seven projections, rsLoRA, dropout 0.3 and 0; base weights get no gradients", async () => {
    const mode = loraMode(0.3);
    const model = makeModel(new ReferenceBackend(), SMALL, mode);
    expect(model.parameters.every((p) => /\.lora_[AB]\.weight$/.test(p.name))).toBe(true);
    expect(model.parameters.length).toBe(2 * 7 * SMALL.numLayers);
    await checkFiniteDifferences(mode, SMALL, false);
    await checkFiniteDifferences(loraMode(0), SMALL, false);
  });

  it("recomputation gives the same gradients as saved activations (with dropout)", async () => {
    const backend = new ReferenceBackend();
    const batch = fixtureBatch(SMALL);
    for (const mode of [{ kind: "full" } as TrainingMode, loraMode(0.2)]) {
      const saved = await analyticGradients(backend, makeModel(backend, SMALL, mode, false), batch);
      const recomputed = await analyticGradients(backend, makeModel(backend, SMALL, mode, true), batch);
      for (const [name, g] of saved) expect(Array.from(recomputed.get(name)!), name).toEqual(Array.from(g));
    }
  });
});

describe("training gradients on the cpu backend (f32)", () => {
  for (const [label, mode, unlikelihood] of [["full", { kind: "full" } as TrainingMode, false], ["LoRA", loraMode(0), false], ["full, with unlikelihood targets", { kind: "full" } as TrainingMode, true]] as const) {
    it(`${label}: analytic gradients match float64 and f32 finite differences`, async () => {
      const cpu = createCpuBackend();
      const reference = new ReferenceBackend();
      const batch = fixtureBatch(SMALL, unlikelihood);
      const cpuModel = makeModel(cpu, SMALL, mode);
      const cpuGrads = await analyticGradients(cpu, cpuModel, batch);
      const refGrads = await analyticGradients(reference, makeModel(reference, SMALL, mode), batch);
      for (const [name, g] of refGrads) expect(relativeError(cpuGrads.get(name)!, g), name).toBeLessThan(1e-4);

      const random = makeRandom(31);
      const h = 1e-2;
      for (const p of cpuModel.parameters.filter((_, i) => i % 3 === 0)) {
        const index = Math.floor(random() * p.value.size);
        const values = (await cpu.download(p.value)) as Float32Array;
        const original = values[index];
        const data = (p.value as unknown as { data: Float32Array }).data;
        data[index] = original + h;
        const plus = await meanLoss(cpuModel, batch);
        data[index] = original - h;
        const minus = await meanLoss(cpuModel, batch);
        data[index] = original;
        const numeric = (plus - minus) / (2 * h);
        const analytic = cpuGrads.get(p.name)![index];
        expect(Math.abs(numeric - analytic), `${p.name}[${index}]: ${analytic} vs ${numeric}`).toBeLessThan(1e-3 + 5e-2 * Math.abs(numeric));
      }
    });
  }
});

describe("bf16 matmuls (autocast-style) on the cpu backend", () => {
  const makeBf16 = (backend: Backend, mode: TrainingMode) => new TrainableLlama(backend, SMALL, randomLlamaWeights(SMALL, 7), {
    mode, maxTokens: 32, seed: 4, loraMatrices: loraValues(SMALL, mode), matmulDtype: "bf16",
  });

  for (const [label, mode] of [["full", { kind: "full" } as TrainingMode], ["LoRA", loraMode(0)], ["LoRA with dropout", loraMode(0.3)]] as const) {
    it(`${label}: gradients within bf16 rounding of the float64 reference, and not the f32 ones`, async () => {
      const batch = fixtureBatch(SMALL);
      const cpu = createCpuBackend();
      const bf16Grads = await analyticGradients(cpu, makeBf16(cpu, mode), batch);
      const f32Grads = await analyticGradients(cpu, makeModel(cpu, SMALL, mode), batch);
      const reference = new ReferenceBackend();
      const refGrads = await analyticGradients(reference, makeModel(reference, SMALL, mode), batch);
      let largest = 0;
      for (const [name, g] of refGrads) {
        const error = relativeError(bf16Grads.get(name)!, g);
        expect(error, name).toBeLessThan(5e-2);
        largest = Math.max(largest, relativeError(bf16Grads.get(name)!, f32Grads.get(name)!));
      }
      expect(largest, "the bf16 path rounds: some gradient differs from the f32 path's").toBeGreaterThan(1e-4);
    });
  }

  it("full training: the bf16 copies follow the f32 masters through optimizer steps and resets", async () => {
    const { AdamW, ADAMW_DEFAULTS } = await import("../src/train/optimizer.js");
    const { trainingStep } = await import("../src/train/step.js");
    const batch = fixtureBatch(SMALL);
    const losses = async (backend: Backend, bf16: boolean) => {
      const model = bf16 ? makeBf16(backend, { kind: "full" }) : makeModel(backend, SMALL, { kind: "full" });
      const optimizer = new AdamW(backend, model.parameters, { ...ADAMW_DEFAULTS, weightDecay: 0 });
      const initial = await model.parameterValues();
      const out: number[] = [];
      for (let step = 1; step <= 8; step++) {
        out.push((await trainingStep(model, optimizer, [batch], { step, learningRate: 1e-2, maxGradNorm: 1 })).loss);
      }
      const { lossSum, targetCount } = await model.evaluate(batch); // after the last step, no zeroGradients between
      out.push(lossSum / targetCount);
      const before = await model.parameterValues();
      model.setParameterValues(new Map([...before].map(([name, v]) => [name, v.map(() => 0)])));
      out.push((await model.evaluate(batch)).lossSum / targetCount); // all-zero weights: uniform, log(vocab)
      model.setParameterValues(initial);
      out.push((await model.evaluate(batch)).lossSum / targetCount); // the initial weights again: step 1's loss
      return out;
    };
    const cpu = createCpuBackend();
    const [f32, bf16] = [await losses(cpu, false), await losses(cpu, true)];
    expect(bf16[7]).toBeLessThan(bf16[0] - 0.1);
    for (let i = 0; i < f32.length; i++) expect(Math.abs(bf16[i] - f32[i]), `loss ${i}: ${bf16[i]} vs ${f32[i]}`).toBeLessThan(2e-2 * Math.abs(f32[i]) + 1e-3);
    expect(bf16[9]).toBeCloseTo(Math.log(SMALL.vocabSize), 5);
    expect(bf16[10]).toBeCloseTo(bf16[0], 5);
  });
});
