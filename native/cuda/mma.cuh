// Tensor-core building blocks (sm_80+) shared by the GEMM (matmul.cu) and the attention kernels: shared-memory
// addresses, cp.async copies, ldmatrix fragment loads and the bf16 mma.sync m16n8k16 instruction.
//
// m16n8k16 fragments (PTX ISA, "Matrix Fragments for mma.m16n8k16"), with g = lane / 4 and c = 2·(lane % 4):
//   a (16×16, row-major): a[0] = rows g, cols c..c+1; a[1] = row g+8, cols c..c+1; a[2] = row g, cols c+8..c+9;
//                         a[3] = row g+8, cols c+8..c+9 (two bf16 per register, the lower column in the low half)
//   b (16×8, "col"):      b0 = rows (k) c..c+1 of column (n) g; b1 = rows c+8..c+9 of column g
//   c/d (16×8 f32):       d[0], d[1] = row g, cols c, c+1; d[2], d[3] = row g+8, cols c, c+1
#pragma once
#include <cstdint>

namespace labor::cuda {

__device__ inline uint32_t SharedAddress(const void* pointer) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(pointer));
}

// 16 bytes global → shared, asynchronously; `valid` false writes 16 zero bytes and reads nothing.
__device__ inline void CopyAsync16(uint32_t shared_address, const void* global, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared_address), "l"(global),
               "r"(valid ? 16 : 0)
               : "memory");
}
__device__ inline void CopyAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int kPending>
__device__ inline void CopyAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

// Four 8×8 b16 matrices; lane l gives the address of row l % 8 of matrix l / 8 and receives, in r[i], its two
// elements (row l / 4, columns 2·(l % 4) + {0, 1}) of matrix i (transposed first with kTrans).
template <bool kTrans>
__device__ inline void LoadMatrixX4(uint32_t (&r)[4], uint32_t shared_address) {
  if (kTrans) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(shared_address)
                 : "memory");
  } else {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(shared_address)
                 : "memory");
  }
}

// c (16×8, f32) += a (16×16 bf16, row-major fragment) · b (16×8 bf16, column-major fragment).
__device__ inline void MmaBf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

}  // namespace labor::cuda
