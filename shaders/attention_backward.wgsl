// Backward of softmax attention with per-query key ranges (flash style: probabilities are recomputed from
// the forward's log-sum-exp, never stored). With s_j = scale · q·k_j, P_j = exp(s_j − lse), dP_j = dOut·v_j,
// D = Σ_d dOut_d · out_d (= Σ_j P_j dP_j) and dS_j = P_j (dP_j − D):
//   dq = scale Σ_j dS_j k_j      dk_j = scale Σ_(t,h) dS_j q      dv_j = Σ_(t,h) P_j dOut
// Three kernels, so no kernel binds more than 8 storage buffers (WebGPU's default per-stage limit):
//   PREP: one workgroup per (t, h): stats[2g] = lse, stats[2g + 1] = D; ranges[2t], ranges[2t + 1] = key range
//   DQ:   one workgroup per (t, h), keys in blocks of 64 (like the forward)
//   DKV:  one workgroup per (key j, kv head): visits every (query, head of the group) pair whose range holds j,
//         summing in query order, so dk and dv are written (=) deterministically, without atomics.

struct Params {
  off1: u32,
  off2: u32,
  off3: u32,
  off4: u32,
  off5: u32,
  off6: u32,
  off7: u32,
  off8: u32,
  queries: u32,
  heads: u32,
  kv_heads: u32,
  head_dim: u32,
  keys: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;

const WG: u32 = 64u;
const PER_THREAD: u32 = 4u; // head dims up to 256

var<workgroup> reduce: array<f32, 64>;

fn workgroup_sum(value: f32, lid: u32) -> f32 {
  reduce[lid] = value;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      reduce[lid] += reduce[lid + stride];
    }
    workgroupBarrier();
  }
  let result = reduce[0];
  workgroupBarrier();
  return result;
}

#if PREP
@group(0) @binding(1) var<storage, read> out: array<f32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read> lse: array<f32>;
@group(0) @binding(4) var<storage, read> key_start: array<i32>;
@group(0) @binding(5) var<storage, read> key_end: array<i32>;
@group(0) @binding(6) var<storage, read_write> stats: array<f32>;
@group(0) @binding(7) var<storage, read_write> ranges: array<u32>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let g = linear_group(wg, groups);
  if (g >= p.queries * p.heads) {
    return; // uniform per workgroup
  }
  var dot = 0.0;
  for (var d = lid; d < p.head_dim; d += WG) {
    dot += dout[p.off2 + g * p.head_dim + d] * out[p.off1 + g * p.head_dim + d];
  }
  let total = workgroup_sum(dot, lid);
  if (lid == 0u) {
    stats[p.off6 + 2u * g] = lse[p.off3 + g];
    stats[p.off6 + 2u * g + 1u] = total;
    let t = g / p.heads;
    if (g % p.heads == 0u) {
      let start = clamp(key_start[p.off4 + t], 0, i32(p.keys));
      ranges[p.off7 + 2u * t] = u32(start);
      ranges[p.off7 + 2u * t + 1u] = u32(clamp(key_end[p.off5 + t], start, i32(p.keys)));
    }
  }
}
#else
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> dout: array<f32>;
@group(0) @binding(5) var<storage, read> stats: array<f32>;
@group(0) @binding(6) var<storage, read> ranges: array<u32>;
#if DQ
@group(0) @binding(7) var<storage, read_write> dq: array<f32>;
#else
@group(0) @binding(7) var<storage, read_write> dk: array<f32>;
@group(0) @binding(8) var<storage, read_write> dv: array<f32>;
#endif

var<workgroup> row_a: array<f32, 256>;
var<workgroup> row_b: array<f32, 256>;
var<workgroup> coeff_a: array<f32, 64>;
var<workgroup> coeff_b: array<f32, 64>;
var<workgroup> rows: array<u32, 64>;
var<workgroup> block_count: u32;

#if DQ
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let g = linear_group(wg, groups);
  if (g >= p.queries * p.heads) {
    return; // uniform per workgroup
  }
  let hd = p.head_dim;
  let t = g / p.heads;
  let kvh = (g % p.heads) / (p.heads / p.kv_heads);
  let kv_stride = p.kv_heads * hd;
  for (var d = lid; d < hd; d += WG) {
    row_a[d] = q[p.off1 + g * hd + d];
    row_b[d] = dout[p.off4 + g * hd + d];
  }
  let lse = stats[p.off5 + 2u * g];
  let big_d = stats[p.off5 + 2u * g + 1u];
  let start = ranges[p.off6 + 2u * t];
  if (lid == 0u) {
    block_count = ranges[p.off6 + 2u * t + 1u] - start;
  }
  let count = workgroupUniformLoad(&block_count);
  var acc: array<f32, PER_THREAD>;
  for (var block = 0u; block < count; block += WG) {
    let i = block + lid;
    var ds = 0.0;
    if (i < count) {
      let key = start + i;
      let k_base = p.off2 + key * kv_stride + kvh * hd;
      let v_base = p.off3 + key * kv_stride + kvh * hd;
      var s = 0.0;
      var dp = 0.0;
      for (var d = 0u; d < hd; d++) {
        s = fma(row_a[d], k[k_base + d], s);
        dp = fma(row_b[d], v[v_base + d], dp);
      }
      let prob = exp(s * p.scale - lse);
      ds = prob * (dp - big_d);
      rows[lid] = k_base;
    }
    coeff_a[lid] = ds;
    workgroupBarrier();
    let in_block = min(WG, count - block);
    for (var c = 0u; c < PER_THREAD; c++) {
      let d = lid + c * WG;
      if (d < hd) {
        var sum = acc[c];
        for (var j = 0u; j < in_block; j++) {
          sum = fma(coeff_a[j], k[rows[j] + d], sum);
        }
        acc[c] = sum;
      }
    }
    workgroupBarrier();
  }
  for (var c = 0u; c < PER_THREAD; c++) {
    let d = lid + c * WG;
    if (d < hd) {
      dq[p.off7 + g * hd + d] = acc[c] * p.scale;
    }
  }
}
#else
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let gk = linear_group(wg, groups); // key j · kv_heads + kv head
  if (gk >= p.keys * p.kv_heads) {
    return; // uniform per workgroup
  }
  let hd = p.head_dim;
  let key = gk / p.kv_heads;
  let kvh = gk % p.kv_heads;
  let group = p.heads / p.kv_heads;
  for (var d = lid; d < hd; d += WG) {
    row_a[d] = k[p.off2 + gk * hd + d];
    row_b[d] = v[p.off3 + gk * hd + d];
  }
  workgroupBarrier();
  let pairs = p.queries * group;
  var acc_k: array<f32, PER_THREAD>;
  var acc_v: array<f32, PER_THREAD>;
  for (var block = 0u; block < pairs; block += WG) {
    let i = block + lid;
    var prob = 0.0;
    var ds = 0.0;
    var qrow = 0u;
    if (i < pairs) {
      let t = i / group;
      let h = kvh * group + i % group;
      qrow = (t * p.heads + h) * hd;
      if (ranges[p.off6 + 2u * t] <= key && key < ranges[p.off6 + 2u * t + 1u]) {
        var s = 0.0;
        var dp = 0.0;
        for (var d = 0u; d < hd; d++) {
          s = fma(q[p.off1 + qrow + d], row_a[d], s);
          dp = fma(dout[p.off4 + qrow + d], row_b[d], dp);
        }
        let g = t * p.heads + h;
        prob = exp(s * p.scale - stats[p.off5 + 2u * g]);
        ds = prob * (dp - stats[p.off5 + 2u * g + 1u]);
      }
    }
    coeff_a[lid] = prob;
    coeff_b[lid] = ds;
    rows[lid] = qrow;
    workgroupBarrier();
    let in_block = min(WG, pairs - block);
    for (var c = 0u; c < PER_THREAD; c++) {
      let d = lid + c * WG;
      if (d < hd) {
        var sum_k = acc_k[c];
        var sum_v = acc_v[c];
        for (var j = 0u; j < in_block; j++) {
          if (coeff_a[j] != 0.0 || coeff_b[j] != 0.0) {
            sum_v = fma(coeff_a[j], dout[p.off4 + rows[j] + d], sum_v);
            sum_k = fma(coeff_b[j], q[p.off1 + rows[j] + d], sum_k);
          }
        }
        acc_k[c] = sum_k;
        acc_v[c] = sum_v;
      }
    }
    workgroupBarrier();
  }
  for (var c = 0u; c < PER_THREAD; c++) {
    let d = lid + c * WG;
    if (d < hd) {
      dk[p.off7 + gk * hd + d] = acc_k[c] * p.scale;
      dv[p.off8 + gk * hd + d] = acc_v[c];
    }
  }
}
#endif
#endif
