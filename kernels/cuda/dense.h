// CUDA dense ops (see kernels/ops/dense.h for the params and their semantics). T = float (fp32 check path) or
// bf16 (training); S = float always: rstd, and the fp32 parameter gradients dtable / dweight that accumulate (+=).
#pragma once
#include "cuda/device.h"
#include "ops/dense.h"

namespace stepwise::cuda {

template <class T> void embedding_forward(const EmbeddingParams<T, float>& p, cudaStream_t stream = nullptr);
template <class T> void embedding_backward(const EmbeddingParams<T, float>& p, cudaStream_t stream = nullptr);
template <class T> void rmsnorm_forward(const RmsNormParams<T, float>& p, cudaStream_t stream = nullptr);
template <class T> void rmsnorm_backward(const RmsNormParams<T, float>& p, cudaStream_t stream = nullptr);
// Fused residual add + RMSNorm: x (N, C) += branch, then p.out = rmsnorm(x) with p.inp ignored (x is the input).
template <class T>
void add_rmsnorm_forward(T* x, const T* branch, const RmsNormParams<T, float>& p, cudaStream_t stream = nullptr);
template <class T> void rope_forward(const RopeParams<T>& p, cudaStream_t stream = nullptr);
template <class T> void rope_backward(const RopeParams<T>& p, cudaStream_t stream = nullptr);
// Linears via cuBLASLt (cuda/gemm.h): out and dinp in T, dweight accumulated in fp32.
template <class T> void linear_forward(const LinearParams<T, float>& p, cudaStream_t stream = nullptr);
template <class T> void linear_backward(const LinearParams<T, float>& p, cudaStream_t stream = nullptr);
template <class T> void swiglu_forward(const SwigluParams<T>& p, cudaStream_t stream = nullptr);
template <class T> void swiglu_backward(const SwigluParams<T>& p, cudaStream_t stream = nullptr);
template <class T> void add_inplace(T* y, const T* x, int64_t n, cudaStream_t stream = nullptr);   // y += x

}  // namespace stepwise::cuda
