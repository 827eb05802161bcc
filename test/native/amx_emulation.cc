// Checks the AMX matmul's packing and tiling on CPUs without AMX by running native/cpu/ops_amx.cc over a
// software model of the tile instructions (REFERENCE.md §5 pseudocode), against the scalar kernel with A
// rounded to bf16 the way the AMX path rounds it. It also checks that every thread that touches a tile
// has loaded a tile configuration first. Build and run (from the repository root):
//
//   g++ -std=c++17 -O2 -mamx-tile -mamx-bf16 -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx512bf16 \
//     -mfma -mf16c -Inative test/native/amx_emulation.cc native/cpu/thread_pool.cc native/cpu/buffer.cc \
//     native/cpu/ops_scalar.cc native/cpu/ops_avx512.cc -lpthread -o /tmp/amx_emulation && /tmp/amx_emulation
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

int main() {
  using namespace labor::cpu;
  ThreadPool::Global().SetThreads(3);
  std::mt19937 random(7);
  std::uniform_real_distribution<float> uniform(-1, 1);
  const int64_t sizes[][4] = {{1, 1, 1, 1},   {1, 7, 17, 33}, {2, 17, 33, 65}, {1, 33, 7, 129},
                              {3, 65, 48, 31}, {1, 129, 65, 64}, {2, 16, 16, 32}, {1, 5, 40, 0}};
  int failures = 0, cases = 0;
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
      std::vector<float> got(batch * m * n), want(got.size());
      for (size_t i = 0; i < got.size(); i++) got[i] = want[i] = uniform(random);
      MatmulArgs args{a.data(), b.data(), DType::kBf16, got.data(), batch, m, n, k,
                      trans_a, trans_b, b_batched, accumulate};
      amx::Matmul(args);
      args.a = a_rounded.data();
      args.out = want.data();
      scalar::Matmul(args);
      double error = 0, norm = 0;
      for (size_t i = 0; i < got.size(); i++) {
        error += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
        norm += double(want[i]) * want[i];
      }
      const double relative = norm > 0 ? std::sqrt(error / norm) : std::sqrt(error);
      cases++;
      if (!(relative <= 1e-5)) {
        failures++;
        std::printf("FAIL batch=%ld m=%ld n=%ld k=%ld transA=%d transB=%d bBatched=%d accumulate=%d: %.3g\n",
                    long(batch), long(m), long(n), long(k), trans_a, trans_b, b_batched, accumulate, relative);
      }
    }
  }
  std::printf("AMX emulation: %d/%d cases within 1e-5 of the scalar kernel on bf16-rounded A\n", cases - failures,
              cases);
  return failures == 0 ? 0 : 1;
}
