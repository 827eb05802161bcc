// ADAMW (one thread per element; REFERENCE §6: decay first on the pre-update weight, eps outside the sqrt):
//   θ ← θ − γλθ;  m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²;  θ ← θ − γ (m / c₁) / (√(v / c₂) + ε)
//   with γλ, 1 − β₁, 1 − β₂ and the bias corrections c₁ = 1 − β₁ᵗ, c₂ = 1 − β₂ᵗ computed on the host in f64
//   (1 − β₂ in f32 would be off by 1.3e-5 relative for β₂ = 0.999).

struct Params {
  off1: u32,
  off2: u32,
  off3: u32,
  off4: u32,
  count: u32,
  learning_rate: f32,
  beta1: f32,
  beta2: f32,
  epsilon: f32,
  decay: f32,
  correction1: f32,
  correction2: f32,
  one_minus_beta1: f32,
  one_minus_beta2: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> t1: array<f32>;
@group(0) @binding(2) var<storage, read> t2: array<f32>;
@group(0) @binding(3) var<storage, read_write> t3: array<f32>;
@group(0) @binding(4) var<storage, read_write> t4: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_group(wg, groups) * 256u + lid;
  if (i >= p.count) {
    return;
  }
  // t1 param, t2 grad, t3 m, t4 v
  let g = t2[p.off2 + i];
  var theta = t1[p.off1 + i];
  theta -= p.decay * theta;
  let m = p.beta1 * t3[p.off3 + i] + p.one_minus_beta1 * g;
  let v = p.beta2 * t4[p.off4 + i] + p.one_minus_beta2 * g * g;
  t3[p.off3 + i] = m;
  t4[p.off4 + i] = v;
  theta -= p.learning_rate * (m / p.correction1) / (sqrt(v / p.correction2) + p.epsilon);
  t1[p.off1 + i] = theta;
}
