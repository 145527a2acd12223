// Builders of the op params the decoder fills most often (linear, RMSNorm, SwiGLU), shared by the CPU model (TensorRef
// handles) and the CUDA model (CudaWeight handles): a handle has `.w` (weight) and `.g` (gradient, whose element type
// is the params' S).
#pragma once
#include <cstdint>
#include <type_traits>

#include "ops.h"

namespace stepwise {

template <class Handle>
using handle_grad_t = std::remove_pointer_t<decltype(Handle::g)>;

// out (N, O) = inp (N, I) W^T with W = w.w (O, I); the caller sets gradient fields for backward.
template <class T, class Handle>
LinearParams<T, handle_grad_t<Handle>> linear_params(T* out, const T* inp, const Handle& w, int64_t N, int64_t I,
                                                     int64_t O) {
  LinearParams<T, handle_grad_t<Handle>> p;
  p.out = out;
  p.inp = inp;
  p.weight = w.w;
  p.N = N;
  p.I = I;
  p.O = O;
  return p;
}

// out (N, C) = rmsnorm(inp) * w.w, saving rstd (N).
template <class T, class S, class Handle>
RmsNormParams<T, S> rmsnorm_params(T* out, S* rstd, const T* inp, const Handle& w, int64_t N, int64_t C, double eps) {
  RmsNormParams<T, S> p;
  p.out = out;
  p.rstd = rstd;
  p.inp = inp;
  p.weight = w.w;
  p.N = N;
  p.C = C;
  p.eps = static_cast<S>(eps);
  return p;
}

// out (N, F) = silu(gate) * up; the caller sets gradient fields for backward.
template <class T>
SwigluParams<T> swiglu_params(T* out, const T* gate, const T* up, int64_t N, int64_t F) {
  SwigluParams<T> p;
  p.out = out;
  p.gate = gate;
  p.up = up;
  p.N = N;
  p.F = F;
  return p;
}

// Backward of linear_params: dinp (N, I) = (or += when accumulate) dout W; w.g += dout^T inp.
template <class T, class Handle>
LinearParams<T, handle_grad_t<Handle>> linear_backward_params(T* dinp, bool accumulate, const T* dout, const T* inp,
                                                              const Handle& w, int64_t N, int64_t I, int64_t O) {
  LinearParams<T, handle_grad_t<Handle>> p = linear_params(static_cast<T*>(nullptr), inp, w, N, I, O);
  p.dinp = dinp;
  p.dweight = w.g;
  p.dout = dout;
  p.accumulate_dinp = accumulate;
  return p;
}

// Backward of rmsnorm_params (rstd as saved by the forward, read only): dinp = (or +=), w.g +=.
template <class T, class S, class Handle>
RmsNormParams<T, S> rmsnorm_backward_params(T* dinp, bool accumulate, const T* dout, const T* inp, const S* rstd,
                                            const Handle& w, int64_t N, int64_t C, double eps) {
  RmsNormParams<T, S> p = rmsnorm_params(static_cast<T*>(nullptr), const_cast<S*>(rstd), inp, w, N, C, eps);
  p.dinp = dinp;
  p.dweight = w.g;
  p.dout = dout;
  p.accumulate_dinp = accumulate;
  return p;
}

// Backward of swiglu_params: dgate, dup (N, F) =.
template <class T>
SwigluParams<T> swiglu_backward_params(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t N,
                                       int64_t F) {
  SwigluParams<T> p = swiglu_params(static_cast<T*>(nullptr), gate, up, N, F);
  p.dgate = dgate;
  p.dup = dup;
  p.dout = dout;
  return p;
}

}  // namespace stepwise
