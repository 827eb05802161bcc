// FORWARD (one workgroup per row): out = x · rsqrt(mean(x²) + eps) · weight   (HF Llama RMSNorm order)
// BACKWARD_ROWS (one workgroup per row), with r = rsqrt(mean(x²) + eps), g = dOut ⊙ weight:
//   dx = r·g − x · r³/d · Σ(g ⊙ x);  also saves r per row for the weight gradient
// BACKWARD_WEIGHT (one thread per column): dWeight[c] += Σ_rows dOut[r, c] · x[r, c] · rstd[r]
//   (rows summed in order: deterministic)

const WG: u32 = 256u;
var<workgroup> partial: array<f32, 256>;

fn workgroup_sum(value: f32, lid: u32) -> f32 {
  partial[lid] = value;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      partial[lid] += partial[lid + stride];
    }
    workgroupBarrier();
  }
  let total = partial[0];
  workgroupBarrier();
  return total;
}

#if BACKWARD_WEIGHT
struct Params {
  off_x: u32,
  off_dout: u32,
  off_rstd: u32,
  off_dweight: u32,
  rows: u32,
  dim: u32,
}
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read> rstd: array<f32>;
@group(0) @binding(4) var<storage, read_write> dweight: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let c = linear_group(wg, groups) * 256u + lid;
  if (c >= p.dim) {
    return;
  }
  var sum = 0.0;
  for (var r = 0u; r < p.rows; r++) {
    sum += dout[p.off_dout + r * p.dim + c] * x[p.off_x + r * p.dim + c] * rstd[p.off_rstd + r];
  }
  dweight[p.off_dweight + c] += sum;
}
#else
#if BACKWARD_ROWS
struct Params {
  off_x: u32,
  off_weight: u32,
  off_dout: u32,
  off_dx: u32,
  off_rstd: u32,
  rows: u32,
  dim: u32,
  eps: f32,
}
#else
struct Params {
  off_x: u32,
  off_weight: u32,
  off_out: u32,
  rows: u32,
  dim: u32,
  eps: f32,
}
#endif

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
#if W_F32
@group(0) @binding(2) var<storage, read> weight: array<f32>;
#else
@group(0) @binding(2) var<storage, read> weight: array<u32>;
#endif
#if BACKWARD_ROWS
@group(0) @binding(3) var<storage, read> dout: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<f32>;
@group(0) @binding(5) var<storage, read_write> rstd_out: array<f32>;
#else
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
#endif

fn weight_at(e: u32) -> f32 {
#if W_F32
  return weight[e];
#else
#if W_BF16
  return bf16_to_f32(half_of(weight[e >> 1u], e));
#else
  return f16_to_f32(half_of(weight[e >> 1u], e));
#endif
#endif
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = linear_group(wg, groups);
  if (row >= p.rows) {
    return; // uniform per workgroup
  }
  let base = p.off_x + row * p.dim;
  var squares = 0.0;
  for (var c = lid; c < p.dim; c += WG) {
    let v = x[base + c];
    squares += v * v;
  }
  let r = 1.0 / sqrt(workgroup_sum(squares, lid) / f32(p.dim) + p.eps);
#if BACKWARD_ROWS
  let dbase = p.off_dout + row * p.dim;
  var dot = 0.0;
  for (var c = lid; c < p.dim; c += WG) {
    dot += dout[dbase + c] * weight_at(p.off_weight + c) * x[base + c];
  }
  let coefficient = workgroup_sum(dot, lid) * r * r * r / f32(p.dim);
  for (var c = lid; c < p.dim; c += WG) {
    dx[p.off_dx + row * p.dim + c] = r * dout[dbase + c] * weight_at(p.off_weight + c) - x[base + c] * coefficient;
  }
  if (lid == 0u) {
    rstd_out[p.off_rstd + row] = r;
  }
#else
  for (var c = lid; c < p.dim; c += WG) {
    out[p.off_out + row * p.dim + c] = (x[base + c] * r) * weight_at(p.off_weight + c);
  }
#endif
}
#endif
