// CUDA fused LM head + cross-entropy (see kernels/ops/loss.h): logits are produced one vocabulary chunk at a time
// (bf16 GEMM, fp32 accumulate) and reduced to an online log-sum-exp; the full (N, V) fp32 logits never exist.
#pragma once
#include "cuda/device.h"
#include "ops/loss.h"

namespace stepwise::cuda {

template <class T> void lm_head_loss_forward(const LmHeadLossParams<T, float>& p, cudaStream_t stream = nullptr);
template <class T> void lm_head_loss_backward(const LmHeadLossParams<T, float>& p, cudaStream_t stream = nullptr);

}  // namespace stepwise::cuda
