// out[b] (+)= alpha · op(A[b]) · op(B[b])   (A f32; B f32, bf16 or f16; out f32)
//
// Element addresses (per batch b, offsets in elements):
//   A [M, K]: off_a + b·batch_a + m·lda + k       (TRANS_A: A stored [K, M]: … + k·lda + m)
//   B [K, N]: off_b + b·batch_b + k·ldb + n       (TRANS_B: B stored [N, K]: … + n·ldb + k)
//   out:      off_out + b·batch_out + m·ldo + n
// batch_b = 0 shares one B across the batch. The host also uses lda/ldb/ldo and the offsets to run one
// window of a B too large to bind at once (split along N when B is [N, K], along K when B is [K, N]).
//
// Each workgroup computes a 64×64 tile of out with 16×16 threads; a thread holds a 4×4 register block at
// rows ly + 16i and columns lx + 16j, so its reads of the shared tiles are broadcasts (A) or consecutive
// (B): no bank conflicts. K advances 16 at a time through two 16×64 shared tiles, stored k-major.
// VEC_A / VEC_B: the host found the operand's contiguous dimension, leading stride and offset all multiples
// of 4, so tiles are loaded as vec4<f32> (or, for 16-bit B, vec2<u32> = 4 halves): one load per thread.

struct Params {
  off_a: u32,
  off_b: u32,
  off_out: u32,
  m: u32,
  n: u32,
  k: u32,
  lda: u32,
  ldb: u32,
  ldo: u32,
  batch_a: u32,
  batch_b: u32,
  batch_out: u32,
  alpha: f32,
  accumulate: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
#if VEC_A
@group(0) @binding(1) var<storage, read> a: array<vec4<f32>>;
#else
@group(0) @binding(1) var<storage, read> a: array<f32>;
#endif
#if B_F32
#if VEC_B
@group(0) @binding(2) var<storage, read> b: array<vec4<f32>>;
#else
@group(0) @binding(2) var<storage, read> b: array<f32>;
#endif
#else
#if VEC_B
@group(0) @binding(2) var<storage, read> b: array<vec2<u32>>;
#else
@group(0) @binding(2) var<storage, read> b: array<u32>;
#endif
#endif
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;

var<workgroup> tile_a: array<f32, 1024>; // [BK][BM]
var<workgroup> tile_b: array<f32, 1024>; // [BK][BN]

fn decode_half(h: u32) -> f32 {
#if B_BF16
  return bf16_to_f32(h);
#else
  return f16_to_f32(h);
#endif
}

// Four consecutive elements of B starting at e (a multiple of 4 on the VEC_B path).
fn b_vec(e: u32) -> vec4<f32> {
#if VEC_B
#if B_F32
  return b[e / 4u];
#else
  let w = b[e / 4u];
  return vec4<f32>(decode_half(w.x & 0xffffu), decode_half(w.x >> 16u), decode_half(w.y & 0xffffu), decode_half(w.y >> 16u));
#endif
#else
  return vec4<f32>(0.0);
#endif
}

fn b_one(e: u32) -> f32 {
#if VEC_B
  return 0.0;
#else
#if B_F32
  return b[e];
#else
  return decode_half(half_of(b[e >> 1u], e));
#endif
#endif
}

fn a_vec(e: u32) -> vec4<f32> {
#if VEC_A
  return a[e / 4u];
#else
  return vec4<f32>(0.0);
#endif
}

fn a_one(e: u32) -> f32 {
#if VEC_A
  return 0.0;
#else
  return a[e];
#endif
}

fn load_a_tile(base: u32, m0: u32, k0: u32, tid: u32) {
#if VEC_A
#if TRANS_A
  // A stored [K, M]: 16 rows of k × 16 vec4 along m
  let kk = tid / 16u;
  let mq = (tid % 16u) * 4u;
  let k = k0 + kk;
  let m = m0 + mq;
  var v = vec4<f32>(0.0);
  if (k < p.k && m < p.m) {
    v = a_vec(base + k * p.lda + m);
  }
  for (var i = 0u; i < 4u; i++) {
    tile_a[kk * BM + mq + i] = v[i];
  }
#else
  // A stored [M, K]: 64 rows of m × 4 vec4 along k
  let r = tid / 4u;
  let kq = (tid % 4u) * 4u;
  let k = k0 + kq;
  let m = m0 + r;
  var v = vec4<f32>(0.0);
  if (k < p.k && m < p.m) {
    v = a_vec(base + m * p.lda + k);
  }
  for (var i = 0u; i < 4u; i++) {
    tile_a[(kq + i) * BM + r] = v[i];
  }
#endif
#else
  for (var i = 0u; i < 4u; i++) {
    let idx = tid + 256u * i;
#if TRANS_A
    let kk = idx / BM;
    let r = idx % BM;
#else
    let r = idx / BK;
    let kk = idx % BK;
#endif
    let k = k0 + kk;
    let m = m0 + r;
    var v = 0.0;
    if (k < p.k && m < p.m) {
#if TRANS_A
      v = a_one(base + k * p.lda + m);
#else
      v = a_one(base + m * p.lda + k);
#endif
    }
    tile_a[kk * BM + r] = v;
  }
#endif
}

fn load_b_tile(base: u32, n0: u32, k0: u32, tid: u32) {
#if VEC_B
#if TRANS_B
  // B stored [N, K]: 64 rows of n × 4 vec4 along k
  let c = tid / 4u;
  let kq = (tid % 4u) * 4u;
  let k = k0 + kq;
  let n = n0 + c;
  var v = vec4<f32>(0.0);
  if (k < p.k && n < p.n) {
    v = b_vec(base + n * p.ldb + k);
  }
  for (var i = 0u; i < 4u; i++) {
    tile_b[(kq + i) * BN + c] = v[i];
  }
#else
  // B stored [K, N]: 16 rows of k × 16 vec4 along n
  let kk = tid / 16u;
  let nq = (tid % 16u) * 4u;
  let k = k0 + kk;
  let n = n0 + nq;
  var v = vec4<f32>(0.0);
  if (k < p.k && n < p.n) {
    v = b_vec(base + k * p.ldb + n);
  }
  for (var i = 0u; i < 4u; i++) {
    tile_b[kk * BN + nq + i] = v[i];
  }
#endif
#else
  for (var i = 0u; i < 4u; i++) {
    let idx = tid + 256u * i;
#if TRANS_B
    let c = idx / BK;
    let kk = idx % BK;
#else
    let kk = idx / BN;
    let c = idx % BN;
#endif
    let k = k0 + kk;
    let n = n0 + c;
    var v = 0.0;
    if (k < p.k && n < p.n) {
#if TRANS_B
      v = b_one(base + n * p.ldb + k);
#else
      v = b_one(base + k * p.ldb + n);
#endif
    }
    tile_b[kk * BN + c] = v;
  }
#endif
}

@compute @workgroup_size(16, 16)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>,
        @builtin(local_invocation_index) tid: u32) {
  let m0 = wg.y * BM;
  let n0 = wg.x * BN;
  let batch = wg.z;
  let base_a = p.off_a + batch * p.batch_a;
  let base_b = p.off_b + batch * p.batch_b;
  var acc: array<array<f32, 4>, 4>;
  for (var k0 = 0u; k0 < p.k; k0 += BK) {
    load_a_tile(base_a, m0, k0, tid);
    load_b_tile(base_b, n0, k0, tid);
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      var av: array<f32, 4>;
      var bv: array<f32, 4>;
      for (var i = 0u; i < 4u; i++) {
        av[i] = tile_a[kk * BM + lid.y + 16u * i];
        bv[i] = tile_b[kk * BN + lid.x + 16u * i];
      }
      for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
          acc[i][j] = fma(av[i], bv[j], acc[i][j]);
        }
      }
    }
    workgroupBarrier();
  }
  let base_out = p.off_out + batch * p.batch_out;
  for (var i = 0u; i < 4u; i++) {
    let row = m0 + lid.y + 16u * i;
    if (row >= p.m) {
      continue;
    }
    for (var j = 0u; j < 4u; j++) {
      let col = n0 + lid.x + 16u * j;
      if (col >= p.n) {
        continue;
      }
      let idx = base_out + row * p.ldo + col;
      var value = p.alpha * acc[i][j];
      if (p.accumulate != 0u) {
        value += out[idx];
      }
      out[idx] = value;
    }
  }
}
