/**
 * Flat parameter groups (src/model/parameter-groups.ts): which groups a model gets, one optimizer-side op per
 * group, the padding between parameters staying zero through AdamW steps, and units for lists that hold only
 * part of a group.
 */
import { describe, expect, it } from "vitest";
import type { Backend } from "../src/engine/backend.js";
import { createCpuBackend } from "../src/engine/cpu/backend.js";
import type { LlamaConfig } from "../src/io/llama-config.js";
import { MODEL_PRESETS } from "../src/model/presets.js";
import { TrainableLlama, randomLlamaWeights, type MatmulDtype, type TrainingMode } from "../src/model/llama-train.js";
import { parameterUnits } from "../src/model/parameter-groups.js";
import { buildPackedBatch } from "../src/train/batches.js";
import { ADAMW_DEFAULTS, AdamW } from "../src/train/optimizer.js";
import { trainingStep } from "../src/train/step.js";

const CONFIG: LlamaConfig = { ...MODEL_PRESETS.tiny, vocabSize: 96, numLayers: 2 };
const LORA: TrainingMode = {
  kind: "lora",
  lora: { rank: 3, alpha: 6, dropout: 0, useRslora: false, targetModules: ["q_proj", "v_proj", "gate_proj", "down_proj"] },
};

/** The backend, counting calls by op name and remembering what `fill` filled. */
function counting(inner: Backend, counts: Map<string, number>, filled: unknown[]): Backend {
  return new Proxy(inner, {
    get(target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown;
      if (typeof value !== "function" || typeof property !== "string") return value;
      return (...args: unknown[]) => {
        counts.set(property, (counts.get(property) ?? 0) + 1);
        if (property === "fill") filled.push(args[0]);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

const batch = (serial: number) => buildPackedBatch([{
  ids: Int32Array.from({ length: 24 }, (_, t) => 1 + ((t * 7 + serial * 13) % (CONFIG.vocabSize - 1))),
  lossMask: new Uint8Array(24).fill(1, 1),
}], [0], serial);

describe("parameter groups", () => {
  const cases: [string, TrainingMode, MatmulDtype, number][] = [
    ["LoRA", LORA, "f32", 1],
    ["LoRA, bf16 matmuls", LORA, "bf16", 1],
    ["full", { kind: "full" }, "f32", 2], // matrices (decay), norm weights (no decay)
    ["full, bf16 matmuls", { kind: "full" }, "bf16", 3], // matrices with bf16 copies, the untied embedding, norms
  ];
  it.each(cases)("%s: every parameter in a group, one fill/Σg²/scale/AdamW per group per step, padding stays 0", async (_, mode, matmulDtype, groups) => {
    const counts = new Map<string, number>(), filled: unknown[] = [];
    const cpu = createCpuBackend();
    const backend = counting(cpu, counts, filled);
    const model = new TrainableLlama(backend, CONFIG, randomLlamaWeights(CONFIG, 4), { mode, maxTokens: 24, seed: 2, matmulDtype });
    const optimizer = new AdamW(backend, model.parameters, { ...ADAMW_DEFAULTS, weightDecay: 0.1 });
    try {
      const units = parameterUnits(model.parameters);
      expect(units.length).toBe(groups);
      expect(model.parameters.every((p) => p.storage !== undefined)).toBe(true);
      for (const unit of units) expect(unit.members.every((p) => p.decay === unit.decay)).toBe(true);

      for (let step = 1; step <= 3; step++) {
        counts.clear();
        filled.length = 0;
        // maxGradNorm tiny: clipping scales every step.
        await trainingStep(model, optimizer, [batch(step)], { step, learningRate: 1e-2, maxGradNorm: 1e-3 });
        for (const op of ["adamw", "sumOfSquares", "scale"]) expect(counts.get(op), `${op} calls in step ${step}`).toBe(groups);
        const gradientFills = filled.filter((t) => model.parameters.some((p) => p.grad === t) || units.some((u) => u.grad === t));
        expect(gradientFills, "zeroGradients: one fill per group").toEqual(units.map((u) => u.grad));
      }

      // Values and gradients between and after the members stay exactly zero (they add nothing to Σg², AdamW
      // leaves them), and every member is a non-overlapping view.
      for (const unit of units) {
        const values = (await cpu.download(unit.value)) as Float32Array, grads = (await cpu.download(unit.grad)) as Float32Array;
        const owned = new Uint8Array(values.length);
        for (const p of unit.members) {
          const at = p.storage!.offset;
          expect(at % 64).toBe(0);
          expect(owned.subarray(at, at + p.value.size).every((x) => x === 0)).toBe(true);
          owned.fill(1, at, at + p.value.size);
          expect(Array.from(values.subarray(at, at + p.value.size))).toEqual(Array.from((await cpu.download(p.value)) as Float32Array));
        }
        const padding = [...values.filter((_, i) => owned[i] === 0), ...grads.filter((_, i) => owned[i] === 0)];
        expect(padding.length).toBe(2 * (values.length - owned.reduce((n, x) => n + x, 0)));
        expect(padding.every((x) => x === 0)).toBe(true);
      }
    } finally {
      optimizer.free();
      model.free();
    }
  });

  it("a list holding part of a group, or parameters out of order, gets one unit per parameter", () => {
    const model = new TrainableLlama(createCpuBackend(), CONFIG, randomLlamaWeights(CONFIG, 4), { mode: LORA, maxTokens: 8, seed: 1 });
    try {
      const all = model.parameters;
      expect(parameterUnits(all).length).toBe(1);
      expect(parameterUnits(all.slice(1)).length).toBe(all.length - 1);
      expect(parameterUnits([...all].reverse()).length).toBe(all.length);
      expect(parameterUnits([...all, ...all]).length).toBe(2);
    } finally {
      model.free();
    }
  });
});
