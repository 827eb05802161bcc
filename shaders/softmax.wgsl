// Row-wise log-softmax family, one workgroup per row. Each thread keeps a running (max m, sum s) over its
// strided share of the row (s' = s·exp(m − m') + exp(x − m')); the workgroup merges the pairs; then
// lse = m + log s.
//   LOG_SOFTMAX:   out[r, j] = z[r, j] − lse          (IN_PLACE: out is z, one binding)
//   GATHER:        out[r] = z[r, wanted[r]] − lse     (wanted < 0 → NaN)
//   CROSS_ENTROPY: loss[r] = lse − z[r, y];  dz[r, j] = gradScale · (exp(z[r, j] − lse) − [j = y])
//                  (both 0 where y = −1). IN_PLACE: dz is z (one binding): every read of the row happens
//                  before the barrier that precedes the writes, and each thread rewrites only elements it read.

struct Params {
  off0: u32,
  off1: u32,
  off2: u32,
  off3: u32,
  rows: u32,
  vocab: u32,
  grad_scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
#if IN_PLACE
@group(0) @binding(1) var<storage, read_write> z: array<f32>;
#else
@group(0) @binding(1) var<storage, read> z: array<f32>;
#endif
#if LOG_SOFTMAX
#if !IN_PLACE
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
#endif
#endif
#if GATHER
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
#endif
#if CROSS_ENTROPY
@group(0) @binding(2) var<storage, read> targets: array<i32>;
@group(0) @binding(3) var<storage, read_write> losses: array<f32>;
#if !IN_PLACE
@group(0) @binding(4) var<storage, read_write> dz: array<f32>;
#endif
#endif

const WG: u32 = 256u;
var<workgroup> maxima: array<f32, 256>;
var<workgroup> sums: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let row = linear_group(wg, groups);
  if (row >= p.rows) {
    return; // uniform per workgroup
  }
  let base = p.off0 + row * p.vocab;
  var m = LOWEST;
  var s = 0.0;
  for (var j = lid; j < p.vocab; j += WG) {
    let x = z[base + j];
    let m_new = max(m, x);
    s = s * exp(m - m_new) + exp(x - m_new);
    m = m_new;
  }
  maxima[lid] = m;
  sums[lid] = s;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      let m1 = maxima[lid];
      let m2 = maxima[lid + stride];
      let m_new = max(m1, m2);
      sums[lid] = sums[lid] * exp(m1 - m_new) + sums[lid + stride] * exp(m2 - m_new);
      maxima[lid] = m_new;
    }
    workgroupBarrier();
  }
  let lse = maxima[0] + log(sums[0]);
#if LOG_SOFTMAX
  storageBarrier(); // in place: every thread's reads of the row before any write
  for (var j = lid; j < p.vocab; j += WG) {
#if IN_PLACE
    z[base + j] = z[base + j] - lse;
#else
    out[p.off1 + row * p.vocab + j] = z[base + j] - lse;
#endif
  }
#endif
#if GATHER
  if (lid == 0u) {
    let wanted = targets[p.off1 + row];
    var value = runtime_f32(0x7fc00000u); // NaN
    if (wanted >= 0 && u32(wanted) < p.vocab) {
      value = z[base + u32(wanted)] - lse;
    }
    out[p.off2 + row] = value;
  }
#endif
#if CROSS_ENTROPY
  let wanted = targets[p.off1 + row];
  let valid = wanted >= 0 && u32(wanted) < p.vocab;
  var target_logit = 0.0;
  if (valid) {
    target_logit = z[base + u32(wanted)];
  }
  storageBarrier(); // every read of z (maxima, wanted logit) before any write to dz (which may be z)
  if (lid == 0u) {
    losses[p.off2 + row] = select(0.0, lse - target_logit, valid);
  }
  let dbase = p.off3 + row * p.vocab;
  for (var j = lid; j < p.vocab; j += WG) {
    var g = 0.0;
    if (valid) {
      g = exp(z[base + j] - lse);
      if (j == u32(wanted)) {
        g -= 1.0;
      }
      g *= p.grad_scale;
    }
#if IN_PLACE
    z[dbase + j] = g;
#else
    dz[dbase + j] = g;
#endif
  }
#endif
}
