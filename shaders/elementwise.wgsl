// Elementwise ops, one thread per element (one kernel per define):
//   ADD:             t2 = t0 + t1
//   SWIGLU:          t2 = silu(t0) ⊙ t1, silu(g) = g·σ(g)
//   SWIGLU_BACKWARD: (t0 gate, t1 up, t2 dOut) → t3 = dOut ⊙ up ⊙ σ(g)(1 + g(1 − σ(g))), t4 = dOut ⊙ silu(g)
//   SCALE:           t1 = t0 · value
//   FILL_WORDS:      every 32-bit word of t0 = bits (f32 and i32 fill)
// Outputs may be inputs. WebGPU forbids binding overlapping ranges where one is writable, so the host binds an
// output that is the same tensor as input j not at all and defines Sk_j: storek then writes input j's binding.
// Tj declares binding j read-only, Tj_RW writable. Each thread reads all of its element's inputs before it
// writes, so in-place is safe.

struct Params {
  off0: u32,
  off1: u32,
  off2: u32,
  off3: u32,
  off4: u32,
  count: u32,
  value: f32,
  bits: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
#if FILL_WORDS
@group(0) @binding(1) var<storage, read_write> t0: array<u32>;
#else
#if T0_RW
@group(0) @binding(1) var<storage, read_write> t0: array<f32>;
#else
@group(0) @binding(1) var<storage, read> t0: array<f32>;
#endif
#if T1_RW
@group(0) @binding(2) var<storage, read_write> t1: array<f32>;
#else
#if T1
@group(0) @binding(2) var<storage, read> t1: array<f32>;
#endif
#endif
#if T2_RW
@group(0) @binding(3) var<storage, read_write> t2: array<f32>;
#else
#if T2
@group(0) @binding(3) var<storage, read> t2: array<f32>;
#endif
#endif
#if T3_RW
@group(0) @binding(4) var<storage, read_write> t3: array<f32>;
#endif
#if T4_RW
@group(0) @binding(5) var<storage, read_write> t4: array<f32>;
#endif

#if SCALE
fn store1(i: u32, v: f32) {
#if S1_0
  t0[p.off0 + i] = v;
#else
  t1[p.off1 + i] = v;
#endif
}
#endif
#if ADD || SWIGLU
fn store2(i: u32, v: f32) {
#if S2_0
  t0[p.off0 + i] = v;
#else
#if S2_1
  t1[p.off1 + i] = v;
#else
  t2[p.off2 + i] = v;
#endif
#endif
}
#endif
#if SWIGLU_BACKWARD
fn store3(i: u32, v: f32) {
#if S3_0
  t0[p.off0 + i] = v;
#else
#if S3_1
  t1[p.off1 + i] = v;
#else
#if S3_2
  t2[p.off2 + i] = v;
#else
  t3[p.off3 + i] = v;
#endif
#endif
#endif
}

fn store4(i: u32, v: f32) {
#if S4_0
  t0[p.off0 + i] = v;
#else
#if S4_1
  t1[p.off1 + i] = v;
#else
#if S4_2
  t2[p.off2 + i] = v;
#else
  t4[p.off4 + i] = v;
#endif
#endif
#endif
}
#endif
#endif

fn sigmoid(g: f32) -> f32 {
  return 1.0 / (1.0 + exp(-g));
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
  let i = linear_group(wg, groups) * 256u + lid;
  if (i >= p.count) {
    return;
  }
#if ADD
  store2(i, t0[p.off0 + i] + t1[p.off1 + i]);
#endif
#if SWIGLU
  let g = t0[p.off0 + i];
  store2(i, g * sigmoid(g) * t1[p.off1 + i]);
#endif
#if SWIGLU_BACKWARD
  let g = t0[p.off0 + i];
  let u = t1[p.off1 + i];
  let d = t2[p.off2 + i];
  let s = sigmoid(g);
  store3(i, d * u * s * (1.0 + g * (1.0 - s)));
  store4(i, d * g * s);
#endif
#if SCALE
  store1(i, t0[p.off0 + i] * p.value);
#endif
#if FILL_WORDS
  t0[p.off0 + i] = p.bits;
#endif
}
