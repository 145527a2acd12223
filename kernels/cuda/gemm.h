// Row-major GEMM through cuBLASLt for every op that multiplies matrices (linears, LM head, benchmarks):
//   C (M, N) = alpha * op(A) op(B) + beta * C, fp32 accumulation; A/B bf16 or fp32 (same type), C bf16 or fp32.
// Plans (descriptors + heuristic choice) are cached by shape, so repeated calls with a shape never re-plan.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace stepwise::cuda {

enum class GemmType : uint8_t { f32, bf16 };

struct GemmArgs {
  const void* a = nullptr;    // op(A) is (M, K): A stored (M, K) row-major, or (K, M) when trans_a
  const void* b = nullptr;    // op(B) is (K, N): B stored (K, N) row-major, or (N, K) when trans_b
  void* c = nullptr;          // (M, N) row-major
  GemmType ab_type = GemmType::f32, c_type = GemmType::f32;
  bool trans_a = false, trans_b = false;
  int64_t M = 0, N = 0, K = 0;
  int64_t lda = 0, ldb = 0, ldc = 0;   // row strides in elements; 0 means packed
  float alpha = 1, beta = 0;
  int64_t batch = 1;                   // strided batch: matrix i at a + i*stride_a etc. (elements)
  int64_t stride_a = 0, stride_b = 0, stride_c = 0;
};

// Runs the GEMM on `stream`. Throws std::runtime_error on an unsupported combination or a cuBLASLt failure.
void gemm(const GemmArgs& g, cudaStream_t stream);

}  // namespace stepwise::cuda
