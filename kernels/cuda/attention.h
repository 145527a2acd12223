// CUDA MFA attention (see kernels/ops/attention.h): flash-style tiles; every query head of a tile shares the one
// K/V head, so each K/V tile is loaded once for many heads. lse in fp32.
#pragma once
#include "cuda/device.h"
#include "ops/attention.h"

namespace stepwise::cuda {

template <class T> void attention_forward(const AttentionParams<T, float>& p, cudaStream_t stream = nullptr);
template <class T> void attention_backward(const AttentionParams<T, float>& p, cudaStream_t stream = nullptr);

}  // namespace stepwise::cuda
