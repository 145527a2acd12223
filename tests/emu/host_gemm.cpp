// cuda::gemm (kernels/cuda/gemm.h) for the emulated CUDA library: the same contract as the cuBLASLt version
// (row-major, optional transposes and row strides, strided batches, alpha / beta, fp32 accumulation, bf16 or fp32
// operands) computed on the host, since the emulator's device memory is host memory.
#include <cstdint>
#include <stdexcept>

#include "cuda/gemm.h"
#include "emulator.h"

namespace stepwise::cuda {
namespace {

float load(const void* base, GemmType type, int64_t i) {
  return type == GemmType::f32 ? static_cast<const float*>(base)[i]
                               : static_cast<float>(static_cast<const __nv_bfloat16*>(base)[i]);
}
void store(void* base, GemmType type, int64_t i, float v) {
  if (type == GemmType::f32)
    static_cast<float*>(base)[i] = v;
  else
    static_cast<__nv_bfloat16*>(base)[i] = __nv_bfloat16(v);
}

}  // namespace

void gemm(const GemmArgs& g, cudaStream_t) {
  if (g.M <= 0 || g.N <= 0 || g.batch <= 0) return;
  if (g.K <= 0) throw std::runtime_error("cuda::gemm: K must be > 0 (cuBLASLt rejects an empty reduction)");
  const int64_t lda = g.lda ? g.lda : (g.trans_a ? g.M : g.K);
  const int64_t ldb = g.ldb ? g.ldb : (g.trans_b ? g.K : g.N);
  const int64_t ldc = g.ldc ? g.ldc : g.N;
  for (int64_t batch = 0; batch < g.batch; ++batch) {
    const int64_t a0 = batch * g.stride_a, b0 = batch * g.stride_b, c0 = batch * g.stride_c;
    for (int64_t m = 0; m < g.M; ++m)
      for (int64_t n = 0; n < g.N; ++n) {
        float acc = 0;
        for (int64_t k = 0; k < g.K; ++k) {
          const int64_t ai = a0 + (g.trans_a ? k * lda + m : m * lda + k);
          const int64_t bi = b0 + (g.trans_b ? n * ldb + k : k * ldb + n);
          acc += load(g.a, g.ab_type, ai) * load(g.b, g.ab_type, bi);
        }
        const int64_t ci = c0 + m * ldc + n;
        const float prior = g.beta != 0 ? g.beta * load(g.c, g.c_type, ci) : 0.f;   // beta 0 ignores C (may be NaN)
        store(g.c, g.c_type, ci, g.alpha * acc + prior);
      }
  }
}

}  // namespace stepwise::cuda
