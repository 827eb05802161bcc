// Softmax attention with per-query key sets, one workgroup (64 threads) per (query t, head h), online softmax:
// keys are visited in blocks of 64; thread i scores key i of the block (s = scale · q·k), the workgroup takes
// the block's max and the running state is rescaled: m' = max(m, max_j s_j), l' = l·e^(m − m') + Σ e^(s_j − m'),
// acc' = acc·e^(m − m') + Σ_j e^(s_j − m') v_j (threads split the head dim for acc). out = acc / l (0 if no key).
// Query head h reads kv head ⌊h / (H/KV)⌋.
//   default: keys [keyStart[t], keyEnd[t])
//   LSE:     also lse[t, h] = m + log l (−inf for an empty set), for the backward
//   TREE:    keys [prefixStart[t], prefixEnd[t]) then extraKeys[extraOffsets[t] .. extraOffsets[t + 1])
// Head dims up to 256 (the host checks).

struct Params {
  off_q: u32,
  off_k: u32,
  off_v: u32,
  off_start: u32,
  off_end: u32,
  off_out: u32,
  off_7: u32,
  off_8: u32,
  queries: u32,
  heads: u32,
  kv_heads: u32,
  head_dim: u32,
  keys: u32,
  scale: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<f32>;
@group(0) @binding(2) var<storage, read> k: array<f32>;
@group(0) @binding(3) var<storage, read> v: array<f32>;
@group(0) @binding(4) var<storage, read> key_start: array<i32>;
@group(0) @binding(5) var<storage, read> key_end: array<i32>;
@group(0) @binding(6) var<storage, read_write> out: array<f32>;
#if LSE
@group(0) @binding(7) var<storage, read_write> lse: array<f32>;
#endif
#if TREE
@group(0) @binding(7) var<storage, read> extra_offsets: array<i32>;
@group(0) @binding(8) var<storage, read> extra_keys: array<i32>;
#endif

const WG: u32 = 64u;
const MAX_HD: u32 = 256u;
const PER_THREAD: u32 = 4u; // MAX_HD / WG

var<workgroup> q_row: array<f32, 256>;
var<workgroup> weights: array<f32, 64>;
var<workgroup> key_rows: array<u32, 64>;
var<workgroup> reduce: array<f32, 64>;
var<workgroup> key_count: u32;

fn workgroup_max(value: f32, lid: u32) -> f32 {
  reduce[lid] = value;
  workgroupBarrier();
  for (var stride = WG / 2u; stride > 0u; stride /= 2u) {
    if (lid < stride) {
      reduce[lid] = max(reduce[lid], reduce[lid + stride]);
    }
    workgroupBarrier();
  }
  let result = reduce[0];
  workgroupBarrier();
  return result;
}

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

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let g = linear_group(wg, groups);
  if (g >= p.queries * p.heads) {
    return; // uniform per workgroup
  }
  let t = g / p.heads;
  let h = g % p.heads;
  let kvh = h / (p.heads / p.kv_heads);
  let hd = p.head_dim;
  let kv_stride = p.kv_heads * hd;
  let q_base = p.off_q + g * hd;
  for (var d = lid; d < hd; d += WG) {
    q_row[d] = q[q_base + d];
  }

  // The key set as a virtual range [0, count): index i maps to a key row.
  let range_start = u32(clamp(key_start[p.off_start + t], 0, i32(p.keys)));
  let range_end = u32(clamp(key_end[p.off_end + t], i32(range_start), i32(p.keys)));
  let prefix = range_end - range_start;
  var own_count = prefix;
#if TREE
  let extra_first = u32(max(extra_offsets[p.off_7 + t], 0));
  let extra_last = u32(max(extra_offsets[p.off_7 + t + 1u], i32(extra_first)));
  own_count += extra_last - extra_first;
#endif
  if (lid == 0u) {
    key_count = own_count;
  }
  let count = workgroupUniformLoad(&key_count); // a barrier, also publishing q_row

  var m = LOWEST;
  var l = 0.0;
  var acc: array<f32, PER_THREAD>;
  for (var block = 0u; block < count; block += WG) {
    let i = block + lid;
    var score = LOWEST;
    if (i < count) {
      var row = range_start + i;
#if TREE
      if (i >= prefix) {
        row = u32(clamp(extra_keys[p.off_8 + extra_first + i - prefix], 0, i32(p.keys) - 1));
      }
#endif
      key_rows[lid] = row;
      let k_base = p.off_k + row * kv_stride + kvh * hd;
      var dot = 0.0;
      for (var d = 0u; d < hd; d++) {
        dot = fma(q_row[d], k[k_base + d], dot);
      }
      score = dot * p.scale;
    }
    let m_new = max(m, workgroup_max(score, lid));
    let correction = exp(m - m_new);
    var weight = 0.0;
    if (i < count) {
      weight = exp(score - m_new);
    }
    weights[lid] = weight;
    l = l * correction + workgroup_sum(weight, lid); // the sum's barriers also publish weights and key_rows
    let in_block = min(WG, count - block);
    for (var c = 0u; c < PER_THREAD; c++) {
      let d = lid + c * WG;
      if (d < hd) {
        var sum = acc[c] * correction;
        for (var j = 0u; j < in_block; j++) {
          sum = fma(weights[j], v[p.off_v + key_rows[j] * kv_stride + kvh * hd + d], sum);
        }
        acc[c] = sum;
      }
    }
    m = m_new;
    workgroupBarrier(); // weights and key_rows are rewritten by the next block
  }

  let inverse = select(0.0, 1.0 / l, l > 0.0);
  for (var c = 0u; c < PER_THREAD; c++) {
    let d = lid + c * WG;
    if (d < hd) {
      out[p.off_out + g * hd + d] = acc[c] * inverse;
    }
  }
#if LSE
  if (lid == 0u) {
    lse[p.off_7 + g] = select(runtime_f32(0xff800000u), m + log(l), l > 0.0);
  }
#endif
}
