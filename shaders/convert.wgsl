// 16-bit stores and dtype conversion. Two 16-bit elements share a u32 word, and neighbouring threads may own
// its two halves, so a half is written with two atomics on disjoint bits (clear, then set): the result does
// not depend on the order in which the halves are written.
//   CONVERT:   dst[i] = src[i] converted (f32/bf16/f16 → f32/bf16/f16, to 16 bits by round to nearest even)
//   FILL_HALF: every element of a 16-bit tensor = bits

struct Params {
  off_src: u32,
  off_dst: u32,
  count: u32,
  bits: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
#if CONVERT
#if SRC_F32
@group(0) @binding(1) var<storage, read> src: array<f32>;
#else
@group(0) @binding(1) var<storage, read> src: array<u32>;
#endif
#endif
#if DST_F32
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
#else
@group(0) @binding(2) var<storage, read_write> dst: array<atomic<u32>>;

fn store_half(e: u32, h: u32) {
  let shift = (e & 1u) * 16u;
  atomicAnd(&dst[e >> 1u], ~(0xffffu << shift));
  atomicOr(&dst[e >> 1u], h << shift);
}
#endif

fn src_at(e: u32) -> f32 {
#if CONVERT
#if SRC_F32
  return src[e];
#else
#if SRC_BF16
  return bf16_to_f32(half_of(src[e >> 1u], e));
#else
  return f16_to_f32(half_of(src[e >> 1u], e));
#endif
#endif
#else
  return 0.0;
#endif
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_group(wg, groups) * 256u + lid;
  if (i >= p.count) {
    return;
  }
#if CONVERT
  let value = src_at(p.off_src + i);
#if DST_F32
  dst[p.off_dst + i] = value;
#else
#if DST_BF16
  store_half(p.off_dst + i, f32_to_bf16(value));
#else
  store_half(p.off_dst + i, f32_to_f16(value));
#endif
#endif
#else
  store_half(p.off_dst + i, p.bits);
#endif
}
