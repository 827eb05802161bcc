/**
 * AdamW over the Backend (REFERENCE §6: decoupled weight decay applied to the pre-update weights, bias
 * corrections 1 − βᵗ, ε outside the square root) with f32 moments next to f32 master weights, and
 * gradient clipping by global norm.
 *
 * Weight decay follows the usual trainer convention (HF Trainer): every matrix decays, norm weights do not
 * (`TrainableParameter.decay`). That is a convention, not part of AdamW.
 */
import type { Backend, Tensor } from "../engine/backend.js";
import type { TrainableParameter } from "../model/llama-train.js";

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  epsilon: number;
  weightDecay: number;
}

/** PyTorch's defaults (lr is given per step by the schedule). */
export const ADAMW_DEFAULTS: AdamWConfig = { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.01 };

export class AdamW {
  private readonly m: Tensor[];
  private readonly v: Tensor[];

  constructor(
    private readonly backend: Backend,
    readonly parameters: readonly TrainableParameter[],
    readonly config: AdamWConfig,
  ) {
    this.m = parameters.map((p) => backend.alloc("f32", p.value.shape));
    this.v = parameters.map((p) => backend.alloc("f32", p.value.shape));
    for (const t of [...this.m, ...this.v]) backend.fill(t, 0);
  }

  /** One update of every parameter from its grad; `step` is the 1-based optimizer step. */
  step(step: number, learningRate: number): void {
    this.parameters.forEach((p, i) => {
      this.backend.adamw(p.value, p.grad, this.m[i], this.v[i], {
        learningRate,
        beta1: this.config.beta1,
        beta2: this.config.beta2,
        epsilon: this.config.epsilon,
        weightDecay: p.decay ? this.config.weightDecay : 0,
        step,
      });
      p.version++;
    });
  }

  /** First and second moments on the host, by parameter name (for checkpoints). */
  async state(): Promise<Map<string, { m: Float32Array; v: Float32Array }>> {
    const out = new Map<string, { m: Float32Array; v: Float32Array }>();
    for (let i = 0; i < this.parameters.length; i++) {
      out.set(this.parameters[i].name, {
        m: (await this.backend.download(this.m[i])) as Float32Array,
        v: (await this.backend.download(this.v[i])) as Float32Array,
      });
    }
    return out;
  }

  /** Restore moments saved by {@link state}: replaces the moment tensors' contents. */
  restore(state: Map<string, { m: Float32Array; v: Float32Array }>): void {
    this.parameters.forEach((p, i) => {
      const saved = state.get(p.name);
      if (!saved || saved.m.length !== p.value.size || saved.v.length !== p.value.size) {
        throw new Error(`optimizer state: no moments of the right size for ${p.name}`);
      }
      this.backend.free(this.m[i]);
      this.backend.free(this.v[i]);
      this.m[i] = this.backend.upload(saved.m, "f32", p.value.shape);
      this.v[i] = this.backend.upload(saved.v, "f32", p.value.shape);
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
  let sumSquares = 0;
  for (const p of parameters) sumSquares += await backend.sumOfSquares(p.grad);
  const norm = Math.sqrt(sumSquares);
  if (maxNorm > 0 && Number.isFinite(maxNorm) && norm > maxNorm) {
    const factor = maxNorm / (norm + 1e-6);
    for (const p of parameters) backend.scale(p.grad, factor, p.grad);
  }
  return norm;
}
