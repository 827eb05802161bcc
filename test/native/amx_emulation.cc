// Checks the AMX matmul's packing and tiling on CPUs without AMX by running native/cpu/ops_amx.cc over a
// software model of the tile instructions (REFERENCE.md §5 pseudocode), against the scalar kernel with A
// rounded to bf16 the way the AMX path rounds it, and against a naive float64 loop. It also checks that
// every thread that touches a tile has loaded a tile configuration first, and that a weight packed once
// (PackedWeight, MatmulArgs::packed_b) gives bit-identical results to packing it per call, is never used
// for another b, and that a buffer refilled in place and packed again gives the new values. Build and run
// (from the repository root; test/amx-emulation.test.ts does this):
//
//   g++ -std=c++17 -O2 -mamx-tile -mamx-bf16 -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16
//     -mfma -mf16c -Inative test/native/amx_emulation.cc native/cpu/thread_pool.cc native/cpu/buffer.cc
//     native/cpu/packed_weight.cc native/cpu/ops_scalar.cc native/cpu/ops_avx512.cc -lpthread
//     -o /tmp/amx_emulation && /tmp/amx_emulation
//   (as one line)
//
// On a CPU with AMX the real instructions are covered by test/cpu-ops.test.ts instead.
#include <immintrin.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "cpu/numeric.h"

namespace emulated {

struct Tiles {
  bool configured = false;
  uint8_t rows[8] = {};
  uint16_t colsb[8] = {};
  alignas(64) uint8_t data[8][16][64] = {};
};
thread_local Tiles tiles;

void Require(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "AMX emulation: %s\n", what);
    std::abort();
  }
}

void LoadConfig(const void* config) {
  const auto* bytes = static_cast<const uint8_t*>(config);
  Require(bytes[0] == 1, "palette must be 1");
  for (int t = 0; t < 8; t++) {
    std::memcpy(&tiles.colsb[t], bytes + 16 + 2 * t, 2);
    tiles.rows[t] = bytes[48 + t];
    Require(tiles.rows[t] <= 16 && tiles.colsb[t] <= 64, "tile shape beyond palette 1");
  }
  tiles.configured = true;
}

void Load(int t, const void* base, long stride) {
  Require(tiles.configured, "tile load before LDTILECFG on this thread");
  for (int r = 0; r < tiles.rows[t]; r++) {
    std::memcpy(tiles.data[t][r], static_cast<const uint8_t*>(base) + r * stride, tiles.colsb[t]);
  }
}

void Store(int t, void* base, long stride) {
  Require(tiles.configured, "tile store before LDTILECFG on this thread");
  for (int r = 0; r < tiles.rows[t]; r++) {
    std::memcpy(static_cast<uint8_t*>(base) + r * stride, tiles.data[t][r], tiles.colsb[t]);
  }
}

void Zero(int t) {
  Require(tiles.configured, "tile zero before LDTILECFG on this thread");
  std::memset(tiles.data[t], 0, sizeof tiles.data[t]);
}

float Bf16At(int t, int row, int index) {
  uint16_t h;
  std::memcpy(&h, tiles.data[t][row] + 2 * index, 2);
  return labor::cpu::Bf16ToFloat(h);
}

// C[m][n] += Σ_k A[m][2k]·B[k][2n] + A[m][2k+1]·B[k][2n+1]
void DotBf16(int c, int a, int b) {
  Require(tiles.configured, "TDPBF16PS before LDTILECFG on this thread");
  Require(tiles.colsb[a] / 4 == tiles.rows[b] && tiles.rows[a] == tiles.rows[c] && tiles.colsb[b] == tiles.colsb[c],
          "TDPBF16PS shapes disagree");
  Require(a != b && b != c && a != c, "TDPBF16PS operands must be distinct");
  for (int m = 0; m < tiles.rows[c]; m++) {
    for (int n = 0; n < tiles.colsb[c] / 4; n++) {
      float sum;
      std::memcpy(&sum, tiles.data[c][m] + 4 * n, 4);
      for (int k = 0; k < tiles.colsb[a] / 4; k++) {
        sum += Bf16At(a, m, 2 * k) * Bf16At(b, k, 2 * n) + Bf16At(a, m, 2 * k + 1) * Bf16At(b, k, 2 * n + 1);
      }
      std::memcpy(tiles.data[c][m] + 4 * n, &sum, 4);
    }
  }
}

}  // namespace emulated

#undef _tile_loadd
#undef _tile_stored
#undef _tile_zero
#undef _tile_dpbf16ps
#define _tile_loadconfig(config) emulated::LoadConfig(config)
#define _tile_loadd(t, base, stride) emulated::Load(t, base, stride)
#define _tile_stored(t, base, stride) emulated::Store(t, base, stride)
#define _tile_zero(t) emulated::Zero(t)
#define _tile_dpbf16ps(c, a, b) emulated::DotBf16(c, a, b)
#include "cpu/ops_amx.cc"

namespace {

using namespace labor::cpu;

// Relative L2 distance of got from want.
double Relative(const std::vector<float>& got, const std::vector<float>& want) {
  double error = 0, norm = 0;
  for (size_t i = 0; i < got.size(); i++) {
    error += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    norm += double(want[i]) * want[i];
  }
  return norm > 0 ? std::sqrt(error / norm) : std::sqrt(error);
}

// out (+)= alpha · op(a)·op(b) in float64, straight from the definition (a already bf16-rounded).
std::vector<float> Naive(const MatmulArgs& p, const std::vector<float>& out_before) {
  std::vector<float> out(out_before);
  const auto* b = static_cast<const uint16_t*>(p.b);
  for (int64_t bi = 0; bi < p.batch; bi++) {
    const float* a = p.a + bi * p.m * p.k;
    const uint16_t* bb = b + (p.b_batched ? bi : 0) * p.k * p.n;
    for (int64_t i = 0; i < p.m; i++) {
      for (int64_t j = 0; j < p.n; j++) {
        double sum = 0;
        for (int64_t k = 0; k < p.k; k++) {
          const double x = p.trans_a ? a[k * p.m + i] : a[i * p.k + k];
          const double y = Bf16ToFloat(p.trans_b ? bb[j * p.k + k] : bb[k * p.n + j]);
          sum += x * y;
        }
        float& o = out[bi * p.m * p.n + i * p.n + j];
        o = static_cast<float>((p.accumulate ? double(o) : 0.0) + double(p.alpha) * sum);
      }
    }
  }
  return out;
}

std::unique_ptr<PackedWeight> Pack(const uint16_t* b, int64_t n, int64_t k, bool trans_b) {
  // What cpu::PackWeight (dispatch.cc) does for Isa::kAmx.
  auto packed = std::make_unique<PackedWeight>(b, n, k, trans_b, sizeof(uint16_t) * amx::PackedBElements(n, k));
  amx::PackB(b, n, k, trans_b, static_cast<uint16_t*>(packed->data.data()));
  return packed;
}

bool Same(const std::vector<float>& x, const std::vector<float>& y) {
  return x.size() == y.size() && std::memcmp(x.data(), y.data(), sizeof(float) * x.size()) == 0;
}

}  // namespace

int main() {
  ThreadPool::Global().SetThreads(3);
  std::mt19937 random(7);
  std::uniform_real_distribution<float> uniform(-1, 1);
  // Awkward N and K on purpose: not multiples of 16 (C/B tile width) or 32 (bf16 per tile row), 0 and 1.
  const int64_t sizes[][4] = {{1, 1, 1, 1},     {1, 7, 17, 33},  {2, 17, 33, 65},  {1, 33, 7, 129},
                              {3, 65, 48, 31},  {1, 129, 65, 64}, {2, 16, 16, 32}, {1, 5, 40, 0},
                              {1, 37, 47, 95},  {2, 3, 100, 161}, {1, 40, 1, 63},  {1, 1, 31, 1}};
  int failures = 0, cases = 0, cached_cases = 0;
  auto fail = [&](const char* what, int64_t batch, int64_t m, int64_t n, int64_t k, int flags, double value) {
    failures++;
    std::printf("FAIL %s batch=%ld m=%ld n=%ld k=%ld transA=%d transB=%d bBatched=%d accumulate=%d: %.3g\n", what,
                long(batch), long(m), long(n), long(k), flags & 1, (flags >> 1) & 1, (flags >> 2) & 1,
                (flags >> 3) & 1, value);
  };
  for (const auto& size : sizes) {
    for (int flags = 0; flags < 16; flags++) {
      const int64_t batch = size[0], m = size[1], n = size[2], k = size[3];
      const bool trans_a = flags & 1, trans_b = flags & 2, b_batched = flags & 4, accumulate = flags & 8;
      std::vector<float> a(batch * m * k), a_rounded(a.size());
      std::vector<uint16_t> b((b_batched ? batch : 1) * k * n);
      for (size_t i = 0; i < a.size(); i++) {
        a[i] = uniform(random);
        a_rounded[i] = Bf16ToFloat(FloatToBf16(a[i]));
      }
      for (uint16_t& x : b) x = FloatToBf16(uniform(random));
      std::vector<float> before(batch * m * n);
      for (float& x : before) x = uniform(random);
      std::vector<float> got(before), want(before);
      MatmulArgs args{a.data(), b.data(), DType::kBf16, got.data(), batch, m, n, k,
                      trans_a, trans_b, b_batched, accumulate, accumulate ? 0.75f : 1.0f};
      amx::Matmul(args);
      MatmulArgs reference = args;
      reference.a = a_rounded.data();
      reference.out = want.data();
      scalar::Matmul(reference);
      const std::vector<float> naive = Naive(reference, before);
      cases++;
      const double relative = Relative(got, want), naive_relative = Relative(got, naive);
      if (!(relative <= 1e-5)) fail("vs scalar", batch, m, n, k, flags, relative);
      if (!(naive_relative <= 1e-5)) fail("vs naive", batch, m, n, k, flags, naive_relative);
      if (b_batched) continue;

      // Packed once, used several times: bit-identical to the per-call path, and no per-call packing.
      const auto packed = Pack(b.data(), n, k, trans_b);
      const int64_t per_call_before = GetPackStats().per_call_packs;
      for (int repeat = 0; repeat < 2; repeat++) {
        std::vector<float> cached(before);
        MatmulArgs with_packed = args;
        with_packed.out = cached.data();
        with_packed.packed_b = packed.get();
        amx::Matmul(with_packed);
        if (!Same(cached, got)) fail("cached != per-call", batch, m, n, k, flags, Relative(cached, got));
      }
      if (GetPackStats().per_call_packs != per_call_before) fail("cached path packed b", batch, m, n, k, flags, 0);
      cached_cases++;

      // A buffer refilled in place (same pointer, as a freed and re-uploaded weight may get) and packed
      // again: the result follows the new values. And a stale PackedWeight whose shape or layout does not
      // match is ignored by the kernel (it packs b per call instead).
      const std::vector<uint16_t> old_b(b);
      for (uint16_t& x : b) x = FloatToBf16(uniform(random));
      std::vector<float> fresh_want(before);
      reference.out = fresh_want.data();
      scalar::Matmul(reference);
      const auto repacked = Pack(b.data(), n, k, trans_b);
      std::vector<float> fresh(before);
      MatmulArgs with_repacked = args;
      with_repacked.out = fresh.data();
      with_repacked.packed_b = repacked.get();
      amx::Matmul(with_repacked);
      const double fresh_relative = Relative(fresh, fresh_want);
      if (!(fresh_relative <= 1e-5)) fail("repacked after refill", batch, m, n, k, flags, fresh_relative);
      const auto other_layout = Pack(b.data(), n, k, !trans_b);
      const auto other_source = Pack(old_b.data(), n, k, trans_b);
      for (const PackedWeight* stale : {other_layout.get(), other_source.get()}) {
        std::vector<float> mismatched(before);
        MatmulArgs with_mismatch = args;
        with_mismatch.out = mismatched.data();
        with_mismatch.packed_b = stale;
        amx::Matmul(with_mismatch);
        if (!Same(mismatched, fresh)) fail("a packed_b made from another b was used", batch, m, n, k, flags, 0);
      }
    }
  }
  const PackStats stats = GetPackStats();
  std::printf("AMX emulation: %d cases (%d with a weight packed once), %d failures: checked against the scalar "
              "kernel and a naive loop on bf16-rounded A, packed = per-call bit for bit, refill + repack, a packed b "
              "of another b or layout ignored\n",
              cases, cached_cases, failures);
  if (stats.live_weights != 0 || stats.live_bytes != 0) {
    std::printf("FAIL packed weights leaked: %ld alive\n", long(stats.live_weights));
    failures++;
  }
  return failures == 0 ? 0 : 1;
}
