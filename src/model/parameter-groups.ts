/**
 * Flat parameter storage for training. A model's trainable tensors are views into a few flat f32 buffers (one
 * group per kind: weight-decayed with a bf16 matmul copy, weight-decayed, not decayed), each parameter starting
 * at a multiple of 64 elements (256 bytes: aligned for every backend's vector loads). Zeroing the gradients,
 * the global-norm clipping, the AdamW step and the bf16 copies then run once per group instead of once per
 * tensor — a Llama-2-7B LoRA has 448 parameter tensors, and on a GPU each of those small ops costs more in
 * launch and host overhead than in work. PyTorch's flat-parameter and fused/foreach optimizers do the same.
 *
 * The padding between parameters stays zero in values and gradients, so it adds nothing to Σ g² and AdamW
 * leaves it at zero.
 */
import type { Backend, Tensor } from "../engine/backend.js";

/** A trainable tensor with its gradient (f32, same shape). */
export interface TrainableParameter {
  /** HF tensor name (full training) or PEFT key (LoRA). */
  name: string;
  value: Tensor;
  grad: Tensor;
  /** AdamW weight decay applies (by convention every matrix; norm weights are exempt). */
  decay: boolean;
  /** Bumped by whatever writes `value` (AdamW.step, setParameterValues): copies made from it know they are behind. */
  version: number;
  /** Where the parameter lives when it is a view into a group's flat buffers. */
  storage?: { group: ParameterGroup; offset: number };
}

/** Parameters stored back to back: value, grad (and copy) are flat [capacity] tensors the members view. */
export interface ParameterGroup {
  value: Tensor;
  grad: Tensor;
  /** bf16 copy of `value` for bf16 matmuls, or null. */
  copy: Tensor | null;
  decay: boolean;
  members: TrainableParameter[];
}

/** What the optimizer-side ops treat as one tensor: a whole group, or a parameter of its own. */
export interface ParameterUnit {
  value: Tensor;
  grad: Tensor;
  decay: boolean;
  members: readonly TrainableParameter[];
}

const ALIGN = 64;
const alignUp = (n: number) => Math.ceil(n / ALIGN) * ALIGN;

/** Elements per group at most (256 MiB of f32: WebGPU's default buffer limit); a larger tensor gets its own. */
export const MAX_GROUP_ELEMENTS = 1 << 26;

/**
 * Splits `parameters` into units: a run of parameters that is exactly a group's members, in order, becomes the
 * group; anything else (a parameter outside any group, a group given only in part) is a unit of its own.
 */
export function parameterUnits(parameters: readonly TrainableParameter[]): ParameterUnit[] {
  const units: ParameterUnit[] = [];
  for (let i = 0; i < parameters.length;) {
    const group = parameters[i].storage?.group;
    if (group && i + group.members.length <= parameters.length && group.members.every((m, j) => parameters[i + j] === m)) {
      units.push(group);
      i += group.members.length;
    } else {
      const p = parameters[i++];
      units.push({ value: p.value, grad: p.grad, decay: p.decay, members: [p] });
    }
  }
  return units;
}

/** The kinds of storage a parameter can need: whether it decays, whether it has a bf16 matmul copy. */
export interface ParameterKind {
  decay: boolean;
  copy: boolean;
}
const kindKey = (k: ParameterKind) => `${k.decay}:${k.copy}`;

/**
 * Allocates parameters into groups. The planned sizes (every parameter's shape, by kind) size the groups
 * up front; `add` then hands out views in the order given, and `finish` checks that the plan was followed.
 */
export class ParameterStore {
  readonly groups: ParameterGroup[] = [];
  private readonly remaining = new Map<string, number>();
  private readonly open = new Map<string, { group: ParameterGroup; used: number; capacity: number }>();

  constructor(private readonly backend: Backend, planned: readonly (ParameterKind & { size: number })[]) {
    for (const p of planned) this.remaining.set(kindKey(p), (this.remaining.get(kindKey(p)) ?? 0) + alignUp(p.size));
  }

  /** A new parameter holding `initial` (f32, its shape's size), its grad zeroed; and its bf16 copy view if any. */
  add(name: string, shape: readonly number[], kind: ParameterKind, initial: Float32Array): { parameter: TrainableParameter; copy: Tensor | null } {
    const be = this.backend;
    const size = initial.length;
    const key = kindKey(kind);
    let slot = this.open.get(key);
    if (!slot || slot.used + size > slot.capacity) {
      const left = this.remaining.get(key) ?? 0;
      if (left < alignUp(size)) throw new Error(`parameter store: ${name} was not planned`);
      const capacity = Math.max(Math.min(left, MAX_GROUP_ELEMENTS), alignUp(size));
      const group: ParameterGroup = {
        value: be.alloc("f32", [capacity]), grad: be.alloc("f32", [capacity]),
        copy: kind.copy ? be.alloc("bf16", [capacity]) : null, decay: kind.decay, members: [],
      };
      be.fill(group.value, 0);
      be.fill(group.grad, 0);
      this.groups.push(group);
      slot = { group, used: 0, capacity };
      this.open.set(key, slot);
    }
    const offset = slot.used;
    slot.used += alignUp(size);
    this.remaining.set(key, (this.remaining.get(key) ?? 0) - alignUp(size));
    const view = (flat: Tensor) => be.reshape(be.sliceRows(flat, offset, size), shape);
    const parameter: TrainableParameter = {
      name, value: view(slot.group.value), grad: view(slot.group.grad), decay: kind.decay, version: 0,
      storage: { group: slot.group, offset },
    };
    writeInto(be, parameter.value, initial);
    slot.group.members.push(parameter);
    return { parameter, copy: slot.group.copy ? view(slot.group.copy) : null };
  }

  /** Throws unless every planned parameter was added. */
  finish(): void {
    for (const [key, left] of this.remaining) if (left !== 0) throw new Error(`parameter store: ${left} planned elements of kind ${key} never added`);
  }

  free(): void {
    for (const g of this.groups) for (const t of [g.value, g.grad, g.copy]) if (t) this.backend.free(t);
    this.groups.length = 0;
  }
}

/** An exact copy of host f32 data into an existing tensor (a view is fine). */
export function writeInto(backend: Backend, target: Tensor, data: Float32Array): void {
  const staged = backend.upload(data, "f32", target.shape);
  backend.scale(staged, 1, target);
  backend.free(staged);
}
