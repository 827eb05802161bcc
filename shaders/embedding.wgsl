// FORWARD: out[t, c] = table[ids[t] − row_start, c] for ids in [row_start, row_start + rows) — the host runs
//   one dispatch per window of a table too large to bind at once; ids outside [0, vocab) give 0 (the host
//   has refused them already when it knows the ids).
// BACKWARD: dTable[ids[t], c] += dOut[t, c]. Rows repeat when ids do, so the add is an atomic
//   compare-exchange loop on the f32 bits (WGSL has no float atomics): correct, order not fixed.

#if BACKWARD
struct Params {
  off_ids: u32,
  off_dout: u32,
  off_dtable: u32,
  tokens: u32,
  dim: u32,
  vocab: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<i32>;
@group(0) @binding(2) var<storage, read> dout: array<f32>;
@group(0) @binding(3) var<storage, read_write> dtable: array<atomic<u32>>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_group(wg, groups) * 256u + lid;
  if (i >= p.tokens * p.dim) {
    return;
  }
  let t = i / p.dim;
  let c = i % p.dim;
  let id = ids[p.off_ids + t];
  if (id < 0 || u32(id) >= p.vocab) {
    return;
  }
  let add = dout[p.off_dout + i];
  let slot = p.off_dtable + u32(id) * p.dim + c;
  var old = atomicLoad(&dtable[slot]);
  loop {
    let result = atomicCompareExchangeWeak(&dtable[slot], old, bitcast<u32>(bitcast<f32>(old) + add));
    if (result.exchanged) {
      break;
    }
    old = result.old_value;
  }
}
#else
struct Params {
  off_ids: u32,
  off_table: u32,
  off_out: u32,
  tokens: u32,
  dim: u32,
  vocab: u32,
  row_start: u32,
  rows: u32,
  zero_outside: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<i32>;
#if T_F32
@group(0) @binding(2) var<storage, read> table: array<f32>;
#else
@group(0) @binding(2) var<storage, read> table: array<u32>;
#endif
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn table_at(e: u32) -> f32 {
#if T_F32
  return table[e];
#else
#if T_BF16
  return bf16_to_f32(half_of(table[e >> 1u], e));
#else
  return f16_to_f32(half_of(table[e >> 1u], e));
#endif
#endif
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_group(wg, groups) * 256u + lid;
  if (i >= p.tokens * p.dim) {
    return;
  }
  let t = i / p.dim;
  let c = i % p.dim;
  let id = ids[p.off_ids + t];
  if (id < 0 || u32(id) >= p.vocab) {
    if (p.zero_outside != 0u) {
      out[p.off_out + i] = 0.0;
    }
    return;
  }
  let row = u32(id) - p.row_start; // wraps to a huge value below the window
  if (row < p.rows) {
    out[p.off_out + i] = table_at(p.off_table + row * p.dim + c);
  }
}
#endif
