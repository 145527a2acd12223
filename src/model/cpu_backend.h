// The CPU backend of the backend-generic layer code (model/layer_forward.h, model/layer_backward.h): each call
// forwards to the cpu:: op of kernels/ops.h. Its CUDA twin is model/cuda/cuda_backend.h (same member names).
#pragma once
#include <cstdint>

#include "ops.h"

namespace stepwise {

struct CpuBackend {
  template <class T> void rmsnorm_forward(const RmsNormParams<T>& p) const { cpu::rmsnorm_forward(p); }
  // x (N, C) += branch, then p.out = rmsnorm(x) (p.inp ignored)
  template <class T> void add_rmsnorm_forward(T* x, const T* branch, RmsNormParams<T> p) const {
    cpu::add_inplace(x, branch, p.N * p.C);
    p.inp = x;
    cpu::rmsnorm_forward(p);
  }
  template <class T> void rope_forward(const RopeParams<T>& p) const { cpu::rope_forward(p); }
  template <class T> void rope_backward(const RopeParams<T>& p) const { cpu::rope_backward(p); }
  template <class T> void attention_backward(const AttentionParams<T>& p) const { cpu::attention_backward(p); }
  template <class T> void router_forward(const RouterParams<T>& p) const { cpu::router_forward(p); }
  void route_plan_build(const RoutePlan& p) const { cpu::route_plan_build(p); }
  template <class T> void permute_forward(const PermuteParams<T>& p) const { cpu::permute_forward(p); }
  template <class T> void grouped_linear_forward(const GroupedLinearParams<T>& p) const {
    cpu::grouped_linear_forward(p);
  }
  template <class T> void combine_forward(const CombineParams<T>& p) const { cpu::combine_forward(p); }
  template <class T> void linear_forward(const LinearParams<T>& p) const { cpu::linear_forward(p); }
  template <class T> void swiglu_forward(const SwigluParams<T>& p) const { cpu::swiglu_forward(p); }
  template <class T> void add_inplace(T* y, const T* x, int64_t n) const { cpu::add_inplace(y, x, n); }
  template <class T> void linear_backward(const LinearParams<T>& p) const { cpu::linear_backward(p); }
  template <class T> void rmsnorm_backward(const RmsNormParams<T>& p) const { cpu::rmsnorm_backward(p); }
  template <class T> void swiglu_backward(const SwigluParams<T>& p) const { cpu::swiglu_backward(p); }
  template <class T> void router_backward(const RouterParams<T>& p) const { cpu::router_backward(p); }
  template <class T> void permute_backward(const PermuteParams<T>& p) const { cpu::permute_backward(p); }
  template <class T> void combine_backward(const CombineParams<T>& p) const { cpu::combine_backward(p); }
  template <class T> void grouped_linear_backward(const GroupedLinearParams<T>& p) const {
    cpu::grouped_linear_backward(p);
  }
};

}  // namespace stepwise
