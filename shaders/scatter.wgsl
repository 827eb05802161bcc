// scatterRows: dst[index[t], :] = src[t, :], one workgroup per source row. When an index repeats the last
// row wins: a row first checks (all threads together) whether a later row has the same index and then skips.
// 32-bit dtypes are copied as bits; 16-bit halves are stored with two atomics on disjoint bits.

struct Params {
  off_src: u32,
  off_index: u32,
  off_dst: u32,
  rows: u32,
  dst_rows: u32,
  width: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read> index: array<i32>;
#if HALF
@group(0) @binding(3) var<storage, read_write> dst: array<atomic<u32>>;
#else
@group(0) @binding(3) var<storage, read_write> dst: array<u32>;
#endif

var<workgroup> superseded: atomic<u32>;

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let t = linear_group(wg, groups);
  if (t >= p.rows) {
    return; // uniform per workgroup
  }
  if (lid == 0u) {
    atomicStore(&superseded, 0u);
  }
  workgroupBarrier();
  let row = index[p.off_index + t];
  for (var later = t + 1u + lid; later < p.rows; later += 256u) {
    if (index[p.off_index + later] == row) {
      atomicStore(&superseded, 1u);
    }
  }
  let skip = workgroupUniformLoad(&superseded);
  if (skip != 0u || row < 0 || u32(row) >= p.dst_rows) {
    return;
  }
  for (var c = lid; c < p.width; c += 256u) {
    let source = p.off_src + t * p.width + c;
    let dest = p.off_dst + u32(row) * p.width + c;
#if HALF
    let h = half_of(src[source >> 1u], source);
    let shift = (dest & 1u) * 16u;
    atomicAnd(&dst[dest >> 1u], ~(0xffffu << shift));
    atomicOr(&dst[dest >> 1u], h << shift);
#else
    dst[dest] = src[source];
#endif
  }
}
