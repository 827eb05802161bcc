// Hopper (sm_90a) building blocks for the wgmma GEMM (matmul.cu): mbarriers, TMA tile loads
// (cp.async.bulk.tensor) and warpgroup MMA (wgmma) on 128-byte-swizzled shared-memory tiles.
//
// Everything here is device code for the arch-specific sm_90a target only (wgmma and setmaxnreg don't exist in
// plain sm_90 or in the compute_90 PTX that newer GPUs JIT-compile); other targets see an empty header, and the
// kernels that use it compile to empty bodies that the host never launches (matmul.cu checks at run time).
// The usage follows the producer/consumer design of pranjalssh/fast.cu (examples/matmul/matmul_4.cuh …
// matmul_7.cuh, "Outperforming cuBLAS on H100") and the PTX wrappers of CUTLASS (cute/arch/mma_sm90_gmma.hpp,
// cutlass/arch/barrier.h); field layouts are from the PTX ISA, cited at each function.
#pragma once
#include <cstdint>

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)

namespace labor::cuda::hopper {

// ---------------------------------------------------------------- mbarrier (PTX ISA: "Parallel Synchronization and Communication Instructions: mbarrier")

/** Arrivals needed per phase (the producer's expect_tx arrival, or one per consumer warp). */
__device__ inline void BarrierInit(uint32_t barrier, uint32_t arrivals) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(barrier), "r"(arrivals) : "memory");
}

/** Makes initialised barriers visible to the other threads and to the TMA unit (the async proxy); then a
 * __syncthreads. As in DeepGEMM/CUTLASS: fence.proxy.async for the async proxy, fence.mbarrier_init for the rest. */
__device__ inline void BarrierInitFence() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}

/** One arrival that also announces `bytes` of TMA data: the phase completes when every arrival is in and the
 * copies' complete_tx have counted those bytes down. */
__device__ inline void BarrierArriveExpectBytes(uint32_t barrier, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(barrier), "r"(bytes) : "memory");
}

__device__ inline void BarrierArrive(uint32_t barrier) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(barrier) : "memory");
}

/** Waits until the phase with this parity has completed (try_wait suspends for a while before it says no). */
__device__ inline void BarrierWait(uint32_t barrier, uint32_t parity) {
  uint32_t done = 0;
  while (!done) {
    asm volatile(
        "{\n"
        ".reg .pred complete;\n"
        "mbarrier.try_wait.parity.shared::cta.b64 complete, [%1], %2;\n"
        "selp.u32 %0, 1, 0, complete;\n"
        "}\n"
        : "=r"(done)
        : "r"(barrier), "r"(parity)
        : "memory");
  }
}

// ---------------------------------------------------------------- TMA (PTX ISA: "cp.async.bulk.tensor")

/** The box at coordinates (x innermost, y, z) of a 3-d tensor map → shared memory at `destination`; completion
 * counts the box's bytes (out-of-bounds elements are zero-filled and counted too) on `barrier`. The CTA's own
 * shared::cta address is a valid shared::cluster address, so no cluster launch is needed. */
__device__ inline void TmaLoad3d(uint32_t destination, const void* tensor_map, uint32_t barrier, int32_t x, int32_t y,
                                 int32_t z) {
  asm volatile(
      "cp.async.bulk.tensor.3d.shared::cluster.global.tile.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3, %4}], "
      "[%5];\n" ::"r"(destination),
      "l"(reinterpret_cast<uint64_t>(tensor_map)), "r"(x), "r"(y), "r"(z), "r"(barrier)
      : "memory");
}

// ---------------------------------------------------------------- wgmma (PTX ISA: "Asynchronous Warpgroup Level Matrix Multiply-Accumulate")

/**
 * Shared-memory matrix descriptor (PTX ISA, "Matrix Descriptor Format" under "Asynchronous Warpgroup Level Matrix Shared Memory Layout") for a K-major tile written
 * by TMA with CU_TENSOR_MAP_SWIZZLE_128B: rows of 64 bf16 (128 bytes), each 8-row group (1024 bytes) a swizzle
 * atom. Fields: bits 0–13 start address >> 4; bits 16–29 leading-dimension byte offset >> 4 (unused for
 * swizzled K-major layouts, 1 by convention); bits 32–45 stride-dimension byte offset >> 4 = 1024 bytes from
 * one 8-row group to the next; bits 49–51 base offset = 0 (the tiles start on 1024-byte boundaries); bits 62–63
 * swizzle mode, 1 = 128-byte. Stepping K by 16 inside the 128-byte row adds 32 bytes to the start address: the
 * hardware applies the swizzle to the final address, as TMA did when it wrote the tile.
 */
__device__ inline uint64_t SwizzledTileDescriptor(uint32_t shared_address) {
  return static_cast<uint64_t>((shared_address & 0x3FFFF) >> 4) | (static_cast<uint64_t>(16 >> 4) << 16) |
         (static_cast<uint64_t>(1024 >> 4) << 32) | (1ull << 62);
}

/**
 * The descriptor of an MN-major (N-contiguous) b tile written by TMA with CU_TENSOR_MAP_SWIZZLE_128B as boxes of
 * 64 n (128 bytes) × K rows, the boxes `box_bytes` apart along n. In the PTX ISA's terms for swizzled MN-major
 * layouts (CUTLASS's canonical ((8 elements, 8, n-chunks), (8, k-groups)) : ((1, 8, LBO), (64, SBO)) in 16-byte
 * units): the leading-dimension byte offset (bits 16–29) steps from one 64-wide n chunk to the next = box_bytes;
 * the stride-dimension byte offset (bits 32–45) from one group of 8 k rows (a 1024-byte swizzle atom) to the next
 * = 1024. Stepping K by 16 adds 16 rows · 128 bytes = 2048 bytes to the start address (whole atoms).
 */
__device__ inline uint64_t SwizzledMnMajorDescriptor(uint32_t shared_address, uint32_t box_bytes) {
  return static_cast<uint64_t>((shared_address & 0x3FFFF) >> 4) | (static_cast<uint64_t>(box_bytes >> 4) << 16) |
         (static_cast<uint64_t>(1024 >> 4) << 32) | (1ull << 62);
}

/** Orders this warpgroup's register and shared-memory accesses before the wgmma that follow. */
__device__ inline void WgmmaFence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ inline void WgmmaCommit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int kPending>
__device__ inline void WgmmaWait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}

/** Keeps the compiler from moving accumulator reads or writes across the asynchronous wgmma (CUTLASS's
 * warpgroup_fence_operand): each register passes through an empty asm that it can't see into. */
template <int kCount>
__device__ inline void FenceAccumulators(float (&d)[kCount]) {
#pragma unroll
  for (int i = 0; i < kCount; i++) asm volatile("" : "+f"(d[i])::"memory");
}

#define LABOR_ACC8(i) \
  "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), "+f"(d[i + 6]), "+f"(d[i + 7])

/**
 * d (64×256 f32, this warpgroup's accumulators) += a (64×16 bf16, K-major) · b (16×256 bf16), both read from
 * shared memory through descriptors; asynchronous until WgmmaWait. b is K-major (stored [n][k]) when
 * kBMnMajor is false, N-major (stored [k][n]) when true.
 * Accumulator layout (PTX ISA, "Register Fragments" for wgmma .m64nNk16, the f32 D matrix): thread t of the warpgroup,
 * warp w = t / 32, lane l: d[i] is row 16·w + l / 4 + 8·((i / 2) % 2), column 8·(i / 4) + 2·(l % 4) + i % 2.
 * The trailing operands: scale-d = 1 (accumulate), scale-a = scale-b = 1, transpose-a = 0 (a K-major),
 * transpose-b = kBMnMajor.
 */
template <bool kBMnMajor>
__device__ inline void WgmmaM64N256K16(float (&d)[128], uint64_t a_descriptor, uint64_t b_descriptor) {
  asm volatile(
      "{\n"
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, "
      "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, "
      "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, "
      "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, "
      "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127},"
      " %128, %129, 1, 1, 1, 0, %130;\n"
      "}\n"
      : LABOR_ACC8(0), LABOR_ACC8(8), LABOR_ACC8(16), LABOR_ACC8(24), LABOR_ACC8(32), LABOR_ACC8(40),
        LABOR_ACC8(48), LABOR_ACC8(56), LABOR_ACC8(64), LABOR_ACC8(72), LABOR_ACC8(80), LABOR_ACC8(88),
        LABOR_ACC8(96), LABOR_ACC8(104), LABOR_ACC8(112), LABOR_ACC8(120)
      : "l"(a_descriptor), "l"(b_descriptor), "n"(kBMnMajor ? 1 : 0)
      : "memory");
}

#undef LABOR_ACC8

// ---------------------------------------------------------------- register budgets (PTX ISA: "setmaxnreg")

/** Gives registers back (the TMA warpgroup needs few) or takes them (the MMA warpgroups' accumulators). */
template <int kRegisters>
__device__ inline void ShrinkRegisters() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegisters));
}
template <int kRegisters>
__device__ inline void GrowRegisters() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegisters));
}

}  // namespace labor::cuda::hopper

#endif  // __CUDA_ARCH_FEAT_SM90_ALL
