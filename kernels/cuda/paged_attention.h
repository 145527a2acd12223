// CUDA paged MFA attention for decoding (see kernels/ops/paged_attention.h): split-K across the context, one K/V
// head shared by all query heads; the context length is a kernel argument (nothing is re-planned per step).
// All PagedAttentionParams pointers are device pointers.
#pragma once
#include "cuda/device.h"
#include "ops/paged_attention.h"

namespace stepwise::cuda {

template <class T> void paged_attention_forward(const PagedAttentionParams<T>& p, cudaStream_t stream = nullptr);

}  // namespace stepwise::cuda
