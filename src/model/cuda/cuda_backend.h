// The CUDA backend of the backend-generic layer code (model/layer_forward.h, model/layer_backward.h): each call
// queues the cuda:: op of kernels/cuda/ops_cuda.h on one stream. Its CPU twin is model/cpu_backend.h.
#pragma once
#include <cstdint>

#include "cuda/ops_cuda.h"

namespace stepwise {

struct CudaBackend {
  cudaStream_t stream = nullptr;
  template <class T> void rmsnorm_forward(const RmsNormParams<T, float>& p) const { cuda::rmsnorm_forward(p, stream); }
  // x (N, C) += branch, then p.out = rmsnorm(x) (p.inp ignored)
  template <class T> void add_rmsnorm_forward(T* x, const T* branch, const RmsNormParams<T, float>& p) const {
    cuda::add_rmsnorm_forward(x, branch, p, stream);
  }
  template <class T> void rope_forward(const RopeParams<T>& p) const { cuda::rope_forward(p, stream); }
  template <class T> void rope_backward(const RopeParams<T>& p) const { cuda::rope_backward(p, stream); }
  template <class T> void attention_backward(const AttentionParams<T, float>& p) const {
    cuda::attention_backward(p, stream);
  }
  template <class T> void router_forward(const RouterParams<T, float>& p) const { cuda::router_forward(p, stream); }
  void route_plan_build(const RoutePlan& p) const { cuda::route_plan_build(p, stream); }
  template <class T> void permute_forward(const PermuteParams<T>& p) const { cuda::permute_forward(p, stream); }
  template <class T> void grouped_linear_forward(const GroupedLinearParams<T, float>& p) const {
    cuda::grouped_linear_forward(p, stream);
  }
  template <class T> void combine_forward(const CombineParams<T, float>& p) const { cuda::combine_forward(p, stream); }
  template <class T> void linear_forward(const LinearParams<T, float>& p) const { cuda::linear_forward(p, stream); }
  template <class T> void swiglu_forward(const SwigluParams<T>& p) const { cuda::swiglu_forward(p, stream); }
  template <class T> void add_inplace(T* y, const T* x, int64_t n) const { cuda::add_inplace(y, x, n, stream); }
  template <class T> void linear_backward(const LinearParams<T, float>& p) const { cuda::linear_backward(p, stream); }
  template <class T> void rmsnorm_backward(const RmsNormParams<T, float>& p) const {
    cuda::rmsnorm_backward(p, stream);
  }
  template <class T> void swiglu_backward(const SwigluParams<T>& p) const { cuda::swiglu_backward(p, stream); }
  template <class T> void router_backward(const RouterParams<T, float>& p) const { cuda::router_backward(p, stream); }
  template <class T> void permute_backward(const PermuteParams<T>& p) const { cuda::permute_backward(p, stream); }
  template <class T> void combine_backward(const CombineParams<T, float>& p) const {
    cuda::combine_backward(p, stream);
  }
  template <class T> void grouped_linear_backward(const GroupedLinearParams<T, float>& p) const {
    cuda::grouped_linear_backward(p, stream);
  }
};

}  // namespace stepwise
