// AMX path for bf16 B (REFERENCE.md §5): A rows are rounded to bf16 (nearest even), B is packed into
// VNNI-2 tiles, TDPBF16PS accumulates in f32 tiles across the whole K loop. f32/f16 B use the AVX-512
// kernel (AMX-BF16 only multiplies bf16 pairs).
//
// Layouts (all zero-padded, so every tile is full and no tail needs a smaller tile shape):
//   A  bf16 [Mpad][Kpad], Mpad = M rounded up to 16, Kpad = K rounded up to 32; one A tile is 16 rows ×
//      32 bf16 at stride 2·Kpad bytes.
//   B  bf16 [Npad/16][Kpad/32][16][16][2]: tile (nt, kt) holds Bt[kp][2n + j] = B(32kt + 2kp + j, 16nt + n)
//      — pairs of consecutive k side by side (VNNI-2), 1 KiB per tile at stride 64 bytes. For a Linear
//      weight W[N][K] with transB this is the 32-bit transpose of W viewed as u32[N][K/2].
//      A frozen bf16 weight is packed once (cpu::PackWeight, dispatch.cc, into MatmulArgs::packed_b);
//      any other bf16 B is packed on every call.
// The microkernel computes a 32×32 block of out from 2 A tiles × 2 B tiles into 4 C tiles (tmm0–3 C,
// tmm4–5 A, tmm6–7 B), falling back to 1 A and/or 1 B tile at the M/N edges.
// GCC 12 warns inside its own AVX-512 intrinsics (_mm512_undefined_* operands, GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstring>

#include "cpu/buffer.h"
#include "cpu/numeric.h"
#include "cpu/ops.h"
#include "cpu/thread_pool.h"

namespace labor::cpu::amx {
namespace {

constexpr int64_t kTileRows = 16;   // rows of A and C tiles, k-pairs of a B tile
constexpr int64_t kTileK = 32;      // bf16 per A-tile row
constexpr int64_t kTileN = 16;      // f32 columns of a C tile
constexpr int64_t kBTileElements = kTileRows * kTileN * 2;

inline int64_t RoundUp(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }
inline int64_t MinI64(int64_t a, int64_t b) { return a < b ? a : b; }

// LDTILECFG operand (palette 1): all 8 tiles 16 rows × 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette_id;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

// Tile configuration is per thread: every pool task calls this before its first tile instruction.
void ConfigureTiles() {
  TileConfig config;
  std::memset(&config, 0, sizeof config);
  config.palette_id = 1;
  for (int t = 0; t < 8; t++) {
    config.colsb[t] = 64;
    config.rows[t] = kTileRows;
  }
  _tile_loadconfig(&config);
}

// 16 floats → 16 bf16 with the same rounding as FloatToBf16 (numeric.h): add 0x7fff + lowest kept bit,
// keep the top half; NaNs keep their top half with the quiet bit set.
inline __m256i RoundToBf16(__m512 x) {
  const __m512i u = _mm512_castps_si512(x);
  const __m512i top = _mm512_srli_epi32(u, 16);
  const __m512i bias = _mm512_add_epi32(_mm512_set1_epi32(0x7fff), _mm512_and_si512(top, _mm512_set1_epi32(1)));
  const __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(u, bias), 16);
  const __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  const __m512i result = _mm512_mask_mov_epi32(rounded, nan, _mm512_or_si512(top, _mm512_set1_epi32(0x40)));
  return _mm512_cvtepi32_epi16(result);
}

// A of one batch item → bf16 [m_pad][k_pad].
void PackA(const MatmulArgs& p, const float* a, int64_t m_pad, int64_t k_pad, uint16_t* dst) {
  ParallelFor(m_pad, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) {
      uint16_t* row = dst + i * k_pad;
      if (i >= p.m) {
        std::memset(row, 0, sizeof(uint16_t) * k_pad);
      } else if (p.trans_a) {
        // a is [K, M]: column i, strided.
        for (int64_t k = 0; k < k_pad; k++) row[k] = k < p.k ? FloatToBf16(a[k * p.m + i]) : 0;
      } else {
        const float* src = a + i * p.k;
        for (int64_t k = 0; k < k_pad; k += 16) {
          const int64_t valid = MinI64(16, p.k - k);
          const __mmask16 mask = valid >= 16 ? 0xffff : valid > 0 ? static_cast<__mmask16>((1u << valid) - 1u) : 0;
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(row + k), RoundToBf16(_mm512_maskz_loadu_ps(mask, src + k)));
        }
      }
    }
  });
}

// B of one batch item → VNNI-2 tiles (layout in the file comment).
void PackBTiles(const uint16_t* b, int64_t n, int64_t k_size, bool trans_b, int64_t n_tiles, int64_t k_tiles,
                uint16_t* dst) {
  ParallelFor(n_tiles, [&](int64_t begin, int64_t end) {
    for (int64_t nt = begin; nt < end; nt++) {
      uint16_t* strip = dst + nt * k_tiles * kBTileElements;  // all k tiles of this column strip
      std::memset(strip, 0, sizeof(uint16_t) * k_tiles * kBTileElements);
      const int64_t n0 = nt * kTileN, columns = MinI64(kTileN, n - n0);
      // Element B(k, n0 + c) goes to tile k / 32, row (k % 32) / 2, position 2c + k % 2.
      for (int64_t kt = 0; kt < k_tiles; kt++) {
        uint16_t* tile = strip + kt * kBTileElements;
        const int64_t k0 = kt * kTileK, valid = MinI64(kTileK, k_size - k0);
        if (trans_b) {
          // b is [N, K]: a 32-bit transpose (pairs of consecutive k of one row stay side by side).
          for (int64_t c = 0; c < columns; c++) {
            const uint16_t* src = b + (n0 + c) * k_size + k0;
            for (int64_t kk = 0; kk < valid; kk++) tile[(kk >> 1) * (2 * kTileN) + 2 * c + (kk & 1)] = src[kk];
          }
        } else {
          // b is [K, N]: rows k and k + 1 interleaved.
          for (int64_t kk = 0; kk < valid; kk++) {
            const uint16_t* src = b + (k0 + kk) * n + n0;
            uint16_t* row = tile + (kk >> 1) * (2 * kTileN) + (kk & 1);
            for (int64_t c = 0; c < columns; c++) row[2 * c] = src[c];
          }
        }
      }
    }
  });
}

// C[32][32] (row stride 32 floats) = Σ_kt A(m rows, kt) · B(nt strips, kt), using MT A tiles and NT B tiles.
template <int MT, int NT>
void TileBlock(const uint16_t* a, int64_t a_stride_bytes, const uint16_t* b0, const uint16_t* b1,
               int64_t k_tiles, float* c) {
  _tile_zero(0);
  if constexpr (NT == 2) _tile_zero(1);
  if constexpr (MT == 2) _tile_zero(2);
  if constexpr (MT == 2 && NT == 2) _tile_zero(3);
  const int64_t a_second = kTileRows * a_stride_bytes / 2;  // 16 rows further, in elements
  for (int64_t kt = 0; kt < k_tiles; kt++) {
    _tile_loadd(4, a + kt * kTileK, a_stride_bytes);
    if constexpr (MT == 2) _tile_loadd(5, a + a_second + kt * kTileK, a_stride_bytes);
    _tile_loadd(6, b0 + kt * kBTileElements, 2 * 2 * kTileN);
    if constexpr (NT == 2) _tile_loadd(7, b1 + kt * kBTileElements, 2 * 2 * kTileN);
    _tile_dpbf16ps(0, 4, 6);
    if constexpr (NT == 2) _tile_dpbf16ps(1, 4, 7);
    if constexpr (MT == 2) _tile_dpbf16ps(2, 5, 6);
    if constexpr (MT == 2 && NT == 2) _tile_dpbf16ps(3, 5, 7);
  }
  constexpr int64_t stride = 32 * sizeof(float);
  _tile_stored(0, c, stride);
  if constexpr (NT == 2) _tile_stored(1, c + 16, stride);
  if constexpr (MT == 2) _tile_stored(2, c + 16 * 32, stride);
  if constexpr (MT == 2 && NT == 2) _tile_stored(3, c + 16 * 32 + 16, stride);
}

void MatmulBf16(const MatmulArgs& p) {
  const int64_t m_pad = RoundUp(p.m, kTileRows), k_pad = RoundUp(p.k, kTileK), n_pad = RoundUp(p.n, kTileN);
  const int64_t k_tiles = k_pad / kTileK, n_tiles = n_pad / kTileN;
  const int64_t a_elements = m_pad * k_pad, b_elements = n_tiles * k_tiles * kBTileElements;
  // B comes packed already (a frozen weight, packed once by PackWeight) or is packed here, per call. A
  // packed_b made from another b or shape is never used (the addon rejects one before it gets here).
  const PackedWeight* packed = p.packed_b;
  const bool cached = packed != nullptr && !p.b_batched && packed->source == p.b && packed->n == p.n &&
                      packed->k == p.k && packed->trans_b == p.trans_b;
  const int64_t b_count = cached ? 0 : p.b_batched ? p.batch : 1;
  AlignedBuffer a_packed(sizeof(uint16_t) * static_cast<size_t>(p.batch * a_elements));
  AlignedBuffer b_packed(sizeof(uint16_t) * static_cast<size_t>(b_count * b_elements));
  uint16_t* ap = static_cast<uint16_t*>(a_packed.data());
  const uint16_t* bp = cached ? static_cast<const uint16_t*>(packed->data.data())
                              : static_cast<const uint16_t*>(b_packed.data());
  for (int64_t bi = 0; bi < p.batch; bi++) PackA(p, p.a + bi * p.m * p.k, m_pad, k_pad, ap + bi * a_elements);
  if (!cached) {
    const double start = PackClock();
    for (int64_t bi = 0; bi < b_count; bi++) {
      PackBTiles(static_cast<const uint16_t*>(p.b) + bi * p.k * p.n, p.n, p.k, p.trans_b, n_tiles, k_tiles,
                 static_cast<uint16_t*>(b_packed.data()) + bi * b_elements);
    }
    RecordPerCallPack(PackClock() - start);
  }

  // Tasks: 32×32 blocks of out, n fastest so consecutive tasks on a thread reuse the same A rows.
  const int64_t m_blocks = (p.m + 31) / 32, n_blocks = (p.n + 31) / 32;
  ParallelFor(p.batch * m_blocks * n_blocks, [&](int64_t begin, int64_t end) {
    ConfigureTiles();
    alignas(64) float c[32 * 32];
    for (int64_t task = begin; task < end; task++) {
      const int64_t bi = task / (m_blocks * n_blocks);
      const int64_t m0 = (task / n_blocks % m_blocks) * 32, n0 = (task % n_blocks) * 32;
      const int64_t rows = MinI64(32, p.m - m0), cols = MinI64(32, p.n - n0);
      const uint16_t* a = ap + bi * a_elements + m0 * k_pad;
      const uint16_t* b0 = bp + (p.b_batched ? bi : 0) * b_elements + (n0 / kTileN) * k_tiles * kBTileElements;
      const uint16_t* b1 = b0 + k_tiles * kBTileElements;  // only read when cols > 16
      const int64_t a_stride = k_pad * static_cast<int64_t>(sizeof(uint16_t));
      if (rows > 16 && cols > 16) TileBlock<2, 2>(a, a_stride, b0, b1, k_tiles, c);
      else if (rows > 16) TileBlock<2, 1>(a, a_stride, b0, b1, k_tiles, c);
      else if (cols > 16) TileBlock<1, 2>(a, a_stride, b0, b1, k_tiles, c);
      else TileBlock<1, 1>(a, a_stride, b0, b1, k_tiles, c);
      float* out = p.out + bi * p.m * p.n + m0 * p.n + n0;
      for (int64_t r = 0; r < rows; r++) {
        for (int64_t col = 0; col < cols; col++) {
          const float product = p.alpha * c[r * 32 + col];
          out[r * p.n + col] = p.accumulate ? out[r * p.n + col] + product : product;
        }
      }
    }
  });
}

}  // namespace

void Matmul(const MatmulArgs& args) {
  if (args.b_dtype != DType::kBf16) return avx512::Matmul(args);
  MatmulBf16(args);
}

int64_t PackedBElements(int64_t n, int64_t k) {
  return RoundUp(n, kTileN) / kTileN * (RoundUp(k, kTileK) / kTileK) * kBTileElements;
}

void PackB(const uint16_t* b, int64_t n, int64_t k, bool trans_b, uint16_t* dst) {
  PackBTiles(b, n, k, trans_b, RoundUp(n, kTileN) / kTileN, RoundUp(k, kTileK) / kTileK, dst);
}

double PeakLoop(int64_t iterations) {
  // Tile operands from a small in-cache buffer; 4 independent accumulators (tmm0–3) share A (tmm4) and
  // B (tmm6), so the loop measures TDPBF16PS issue rate, not loads.
  ConfigureTiles();
  alignas(64) static const uint16_t zeros[kTileRows * 32] = {};
  _tile_loadd(4, zeros, 64);
  _tile_loadd(6, zeros, 64);
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int64_t i = 0; i < iterations; i++) {
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 6);
    _tile_dpbf16ps(2, 4, 6);
    _tile_dpbf16ps(3, 4, 6);
  }
  alignas(64) float sink[16 * 16];
  _tile_stored(0, sink, 64);
  _tile_release();
  return static_cast<double>(iterations) * 4 * 16 * 16 * 32 * 2;
}

}  // namespace labor::cpu::amx
