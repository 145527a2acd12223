// The CPU backend of the backend-generic model code (model/moe_ffn_forward.h, model/ffn_backward.h): each call forwards to the cpu:: op of
// kernels/ops.h. Its CUDA twin is model/cuda/cuda_backend.h (same member names, ops queued on one stream).
#pragma once
#include <cstdint>

#include "ops.h"

namespace stepwise {

struct CpuBackend {
  void route_plan_build(const RoutePlan& p) const { cpu::route_plan_build(p); }
  template <class T> void permute_forward(const PermuteParams<T>& p) const { cpu::permute_forward(p); }
  template <class T> void grouped_linear_forward(const GroupedLinearParams<T>& p) const { cpu::grouped_linear_forward(p); }
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
