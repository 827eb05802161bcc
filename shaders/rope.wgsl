// Rotary embedding, HF half-split: in each head, element i pairs with i + hd/2 and rotates by
// θ = positions[t] · invFreq[i] (the f32 product, as HF computes it; sin/cos precise, see common.wgsl):
//   (x₁, x₂) → (x₁ cos θ − x₂ sin θ, x₂ cos θ + x₁ sin θ)
// direction = −1 rotates by −θ (the backward: RoPE is orthogonal, so its transpose is its inverse).
// One thread per pair; each reads both elements before writing them, so out may be x (IN_PLACE: one binding).

struct Params {
  off_x: u32,
  off_pos: u32,
  off_freq: u32,
  off_out: u32,
  tokens: u32,
  heads: u32,
  half: u32,
  direction: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
#if IN_PLACE
@group(0) @binding(1) var<storage, read_write> x: array<f32>;
#else
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
#endif
@group(0) @binding(2) var<storage, read> positions: array<i32>;
@group(0) @binding(3) var<storage, read> inv_freq: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let idx = linear_group(wg, groups) * 256u + lid;
  if (idx >= p.tokens * p.heads * p.half) {
    return;
  }
  let i = idx % p.half;
  let th = idx / p.half; // t · heads + h
  let t = th / p.heads;
  let angle = f32(positions[p.off_pos + t]) * inv_freq[p.off_freq + i];
  let sc = sincos(angle);
  let s = sc.x * p.direction;
  let c = sc.y;
  let head = th * 2u * p.half;
  let x1 = x[p.off_x + head + i];
  let x2 = x[p.off_x + head + i + p.half];
#if IN_PLACE
  x[p.off_x + head + i] = x1 * c - x2 * s;
  x[p.off_x + head + i + p.half] = x2 * c + x1 * s;
#else
  out[p.off_out + head + i] = x1 * c - x2 * s;
  out[p.off_out + head + i + p.half] = x2 * c + x1 * s;
#endif
}
