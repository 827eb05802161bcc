/**
 * AdamW over the Backend (REFERENCE §6: decoupled weight decay applied to the pre-update weights, bias
 * corrections 1 − βᵗ, ε outside the square root) with f32 moments next to f32 master weights, and
 * gradient clipping by global norm. Both work unit by unit (parameterUnits): a parameter group stored in flat
 * buffers is updated, measured and scaled by one op each, its moments flat like it.
 *
 * Weight decay follows the usual trainer convention (HF Trainer): every matrix decays, norm weights do not
 * (`TrainableParameter.decay`). That is a convention, not part of AdamW.
 */
import type { Backend, Tensor } from "../engine/backend.js";
import { parameterUnits, type ParameterUnit, type TrainableParameter } from "../model/parameter-groups.js";

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
}

/** PyTorch's defaults (lr is given per step by the schedule). */
export const ADAMW_DEFAULTS: AdamWConfig = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01 };

export class AdamW {
  private readonly units: ParameterUnit[];
  private readonly m: Tensor[];
  private readonly v: Tensor[];

  constructor(
    private readonly backend: Backend,
    readonly parameters: readonly TrainableParameter[],
    readonly config: AdamWConfig,
  ) {
    this.units = parameterUnits(parameters);
    this.m = this.units.map((u) => backend.alloc("f32", u.value.shape));
    this.v = this.units.map((u) => backend.alloc("f32", u.value.shape));
    for (const t of [...this.m, ...this.v]) backend.fill(t, 0);
  }

  /** One update of every parameter from its grad; `step` is the 1-based optimizer step. */
  step(step: number, learningRate: number): void {
    this.units.forEach((u, i) => {
      this.backend.adamw(u.value, u.grad, this.m[i], this.v[i], {
        learningRate,
        beta1: this.config.beta1,
        beta2: this.config.beta2,
        epsilon: this.config.epsilon,
        weightDecay: u.decay ? this.config.weightDecay : 0,
        step,
      });
      for (const p of u.members) p.version++;
    });
  }

  /** First and second moments on the host, by parameter name (for checkpoints). */
  async state(): Promise<Map<string, { m: Float32Array; v: Float32Array }>> {
    const out = new Map<string, { m: Float32Array; v: Float32Array }>();
    for (let i = 0; i < this.units.length; i++) {
      const m = (await this.backend.download(this.m[i])) as Float32Array;
      const v = (await this.backend.download(this.v[i])) as Float32Array;
      for (const p of this.units[i].members) {
        const at = p.storage?.offset ?? 0, size = p.value.size;
        out.set(p.name, { m: m.slice(at, at + size), v: v.slice(at, at + size) });
      }
    }
    return out;
  }

  /** Restore moments saved by {@link state}: replaces the moment tensors' contents. */
  restore(state: Map<string, { m: Float32Array; v: Float32Array }>): void {
    this.units.forEach((u, i) => {
      const m = new Float32Array(u.value.size), v = new Float32Array(u.value.size);
      for (const p of u.members) {
        const saved = state.get(p.name);
        if (!saved || saved.m.length !== p.value.size || saved.v.length !== p.value.size) {
          throw new Error(`optimizer state: no moments of the right size for ${p.name}`);
        }
        const at = p.storage?.offset ?? 0;
        m.set(saved.m, at);
        v.set(saved.v, at);
      }
      this.backend.free(this.m[i]);
      this.backend.free(this.v[i]);
      this.m[i] = this.backend.upload(m, "f32", u.value.shape);
      this.v[i] = this.backend.upload(v, "f32", u.value.shape);
    });
  }

  free(): void {
    for (const t of [...this.m, ...this.v]) this.backend.free(t);
  }
}

/**
 * Clip gradients to a global L2 norm (torch.nn.utils.clip_grad_norm_): norm = √(Σ_p ‖g_p‖²); when
 * norm > maxNorm every gradient is scaled by maxNorm / (norm + 1e-6). Returns the norm before clipping.
 * maxNorm ≤ 0 or ∞ only measures.
 */
export async function clipGradientNorm(backend: Backend, parameters: readonly TrainableParameter[], maxNorm: number): Promise<number> {
  const units = parameterUnits(parameters);
  let sumSquares = 0;
  for (const u of units) sumSquares += await backend.sumOfSquares(u.grad);
  const norm = Math.sqrt(sumSquares);
  if (maxNorm > 0 && Number.isFinite(maxNorm) && norm > maxNorm) {
    const factor = maxNorm / (norm + 1e-6);
    for (const u of units) backend.scale(u.grad, factor, u.grad);
  }
  return norm;
}
