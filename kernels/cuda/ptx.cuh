// The PTX-level primitives of the bf16 tensor-core kernels (attention, decode attention, grouped GEMM): mma.sync
// m16n8k16 (bf16 in, fp32 accumulate), ldmatrix, cp.async and the dynamic shared-memory base. On the GPU each is one
// PTX instruction; under STEPWISE_CUDA_EMULATOR (tests/emu runs the kernels' own source on the CPU) the emulator
// defines the same functions, so the fragment layouts written here are the contract both sides keep.
#pragma once
#include <cstdint>

#include "cuda/common.cuh"

namespace stepwise::cuda::ptx {

// Fragment layouts of mma.m16n8k16 with bf16 inputs (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating
// point type"). lane = threadIdx.x % 32, g = lane / 4, t = lane % 4. A register holds two bf16, the lower column (A,
// C) or lower k (B) in its low 16 bits.
//   A (16 x 16, m x k):  a[0] = A(g, 2t..2t+1)     a[1] = A(g+8, 2t..2t+1)
//                        a[2] = A(g, 2t+8..2t+9)   a[3] = A(g+8, 2t+8..2t+9)
//   B (16 x 8, k x n):   b[0] = B(2t..2t+1, g)     b[1] = B(2t+8..2t+9, g)
//   C, D (16 x 8, fp32): c[0], c[1] = C(g, 2t), C(g, 2t+1)   c[2], c[3] = C(g+8, 2t), C(g+8, 2t+1)
// So the C fragments of two adjacent n-tiles (columns 0-7 and 8-15), packed in pairs with pack_bf16, are exactly the
// A fragment of a 16 x 16 tile: a[0] = pack(c0[0], c0[1]), a[1] = pack(c0[2], c0[3]), a[2] = pack(c1[0], c1[1]),
// a[3] = pack(c1[2], c1[3]) (the flash-attention reuse of P as the A operand of P V).
//
// ldmatrix (m8n8, b16): lanes 8i .. 8i+7 give the addresses (16-byte aligned, shared memory) of rows 0..7 of matrix i;
// r[i] of lane receives row g of matrix i, elements 2t and 2t+1. With .trans it receives column g instead: elements
// (row 2t, col g) and (row 2t+1, col g). Usual addressing:
//   A fragment of a row-major 16 x 16 tile X:   lane's address = &X[lane % 16][8 * (lane / 16)]  -> ldmatrix_x4
//   B fragments of two n-tiles from Y (n x k, row-major, e.g. K of Q K^T), 16 n x 16 k:
//     lane's address = &Y[8 * (lane / 16) + lane % 8][8 * ((lane / 8) % 2)] -> ldmatrix_x4: r[0], r[1] = b of n 0-7,
//     r[2], r[3] = b of n 8-15
//   B fragments from Z (k x n, row-major, e.g. V of P V), 16 k x 16 n:
//     lane's address = &Z[8 * ((lane / 8) % 2) + lane % 8][8 * (lane / 16)] -> ldmatrix_x4_trans: r[0], r[1] = b of
//     n 0-7, r[2], r[3] = b of n 8-15
//
// cp.async: 16 bytes global -> shared without passing registers; `valid` false writes 16 zero bytes and reads
// nothing (still pass a mapped address, e.g. the tensor's base). The copies of a thread's groups are only guaranteed to have landed after cp_async_wait<N>() (all but the
// N most recent committed groups), and are visible to other threads after a __syncthreads() that follows it.

#ifdef STEPWISE_CUDA_EMULATOR
// Defined by the emulator (tests/emu).
__device__ void mma_bf16_16816(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]);
__device__ void ldmatrix_x4(uint32_t (&r)[4], const void* row);
__device__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row);
__device__ void ldmatrix_x2(uint32_t (&r)[2], const void* row);
__device__ void ldmatrix_x2_trans(uint32_t (&r)[2], const void* row);
__device__ void cp_async_16(void* shared_dst, const void* global_src, bool valid);
__device__ void cp_async_commit();
__device__ void cp_async_wait_groups(int pending);
template <int Pending> __device__ void cp_async_wait() { cp_async_wait_groups(Pending); }
__device__ unsigned char* dynamic_shared_base();
#else
__device__ __forceinline__ uint32_t shared_address(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// d += A * B for one 16 x 8 x 16 tile (layouts above).
__device__ __forceinline__ void mma_bf16_16816(float (&d)[4], const uint32_t (&a)[4], const uint32_t (&b)[2]) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(row)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(shared_address(row)));
}
// x2: lanes 0-15 give the addresses (matrices 0 and 1); the addresses of lanes 16-31 are ignored but must be valid.
__device__ __forceinline__ void ldmatrix_x2(uint32_t (&r)[2], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(shared_address(row)));
}
__device__ __forceinline__ void ldmatrix_x2_trans(uint32_t (&r)[2], const void* row) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0, %1}, [%2];\n"
               : "=r"(r[0]), "=r"(r[1])
               : "r"(shared_address(row)));
}

__device__ __forceinline__ void cp_async_16(void* shared_dst, const void* global_src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(shared_address(shared_dst)),
               "l"(global_src), "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int Pending> __device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending));
}

// Base of the kernel's dynamic shared memory (the launch's third <<<>>> argument), 16-byte aligned.
__device__ __forceinline__ unsigned char* dynamic_shared_base() {
  extern __shared__ __align__(16) unsigned char dynamic_shared[];
  return dynamic_shared;
}
#endif

// Two floats rounded to bf16 and packed into one register, `lo` in the low 16 bits.
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

}  // namespace stepwise::cuda::ptx
