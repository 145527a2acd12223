// CUDA AdamW step over fp32 master weights and fp32 moments, one launch for n elements, with the CPU reference's
// arithmetic (bias corrections 1 - beta^step computed in double on the host, the update in fp32); optionally writes
// the updated weights rounded to bf16 (the copy the forward reads) in the same pass.
#include <cmath>

#include "cpu/check.h"
#include "cuda/common.cuh"
#include "cuda/grid_stride.cuh"
#include "cuda/optim.h"

namespace stepwise::cuda {
namespace {

struct AdamWScalars {
  float beta1, beta2, lr, eps, weight_decay, bias1, bias2;   // bias_k = 1 - beta_k^step
};

// Thread mapping: one thread per parameter i (grid-stride loop).
__global__ void adamw_kernel(float* __restrict__ param, float* __restrict__ m, float* __restrict__ v,
                             const float* __restrict__ grad, bf16* __restrict__ param_copy, int64_t n,
                             AdamWScalars s) {
  for (int64_t i = global_thread_index(); i < n; i += global_thread_count()) {
    const float g = grad[i];
    const float m_new = s.beta1 * m[i] + (1.f - s.beta1) * g;
    const float v_new = s.beta2 * v[i] + (1.f - s.beta2) * g * g;
    m[i] = m_new;
    v[i] = v_new;
    const float p = param[i];
    const float update = (m_new / s.bias1) / (sqrtf(v_new / s.bias2) + s.eps) + s.weight_decay * p;
    const float p_new = p - s.lr * update;
    param[i] = p_new;
    if (param_copy != nullptr) param_copy[i] = __float2bfloat16_rn(p_new);
  }
}

}  // namespace

void adamw_update(const AdamWParams& p, bf16* param_copy, cudaStream_t stream) {
  const char* op = "cuda::adamw_update";
  cpu::require_nonnegative(p.n, op, "n");
  if (p.step < 1) cpu::kernel_fail(op, "step = ", p.step, " must be >= 1 (steps count from 1)");
  if (!(p.beta1 >= 0 && p.beta1 < 1)) cpu::kernel_fail(op, "beta1 = ", p.beta1, " must be in [0, 1)");
  if (!(p.beta2 >= 0 && p.beta2 < 1)) cpu::kernel_fail(op, "beta2 = ", p.beta2, " must be in [0, 1)");
  if (p.n == 0) return;
  cpu::require_pointer(p.param, op, "param");
  cpu::require_pointer(p.m, op, "m");
  cpu::require_pointer(p.v, op, "v");
  cpu::require_pointer(p.grad, op, "grad");
  const double step = static_cast<double>(p.step);
  AdamWScalars s;
  s.beta1 = p.beta1, s.beta2 = p.beta2, s.lr = p.lr, s.eps = p.eps, s.weight_decay = p.weight_decay;
  s.bias1 = static_cast<float>(1.0 - std::pow(static_cast<double>(p.beta1), step));
  s.bias2 = static_cast<float>(1.0 - std::pow(static_cast<double>(p.beta2), step));
  adamw_kernel<<<grid_stride_blocks(p.n), kElementwiseThreads, 0, stream>>>(p.param, p.m, p.v, p.grad, param_copy, p.n,
                                                                            s);
  STEPWISE_CUDA_LAUNCH_CHECK("adamw_kernel");
}

}  // namespace stepwise::cuda
