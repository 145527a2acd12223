// CPU reference of the SwiGLU gate: out = silu(gate) * up with silu(g) = g * sigmoid(g), elementwise over (N, F).
// Backward: dup = dout * silu(gate); dgate = dout * up * sigmoid(gate) * (1 + gate * (1 - sigmoid(gate))).
// float rows use cpu/fast_exp.h's vectorised exp (per-ISA clones); double rows use std::exp.
#include <algorithm>
#include <cmath>

#include "cpu/check.h"
#include "cpu/fast_exp.h"
#include "cpu/parallel.h"
#include "ops/dense.h"

namespace stepwise::cpu {

namespace {

// 1 / (1 + exp(-x)); exp's argument is capped at 88 (exp(88) ~ 1.6e38), where the result is 0 to float precision.
inline float sigmoid(float x) { return 1.0f / (1.0f + exp_vectorisable(std::min(-x, 88.0f))); }
inline double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }  // exp overflow gives 1/inf = 0

template <class T>
inline void forward_row(T* y, const T* g, const T* u, int64_t F) {
  for (int64_t f = 0; f < F; ++f) y[f] = g[f] * sigmoid(g[f]) * u[f];
}

template <class T>
inline void backward_row(T* dg, T* du, const T* dy, const T* g, const T* u, int64_t F) {
  for (int64_t f = 0; f < F; ++f) {
    const T s = sigmoid(g[f]);
    const T silu = g[f] * s;
    dg[f] = dy[f] * u[f] * s * (T(1) + g[f] * (T(1) - s));
    du[f] = dy[f] * silu;
  }
}

STEPWISE_VECTOR_CLONES
void swiglu_row(float* y, const float* g, const float* u, int64_t F) { forward_row(y, g, u, F); }
void swiglu_row(double* y, const double* g, const double* u, int64_t F) { forward_row(y, g, u, F); }

STEPWISE_VECTOR_CLONES
void swiglu_grad_row(float* dg, float* du, const float* dy, const float* g, const float* u, int64_t F) {
  backward_row(dg, du, dy, g, u, F);
}
void swiglu_grad_row(double* dg, double* du, const double* dy, const double* g, const double* u, int64_t F) {
  backward_row(dg, du, dy, g, u, F);
}

template <class T>
void check_swiglu(const SwigluParams<T>& p, const char* op) {
  require_nonnegative(p.N, op, "N");
  require_nonnegative(p.F, op, "F");
  if (p.N == 0 || p.F == 0) return;
  require_pointer(p.gate, op, "gate");
  require_pointer(p.up, op, "up");
}

}  // namespace

template <class T>
void swiglu_forward(const SwigluParams<T>& p) {
  check_swiglu(p, "swiglu_forward");
  if (p.N == 0 || p.F == 0) return;
  require_pointer(p.out, "swiglu_forward", "out");
  const int64_t F = p.F;
#pragma omp parallel for if (parallel_worth(p.N * F)) schedule(static)
  for (int64_t n = 0; n < p.N; ++n)  // out[n] (F) from gate[n] (F), up[n] (F)
    swiglu_row(p.out + n * F, p.gate + n * F, p.up + n * F, F);
}

template <class T>
void swiglu_backward(const SwigluParams<T>& p) {
  check_swiglu(p, "swiglu_backward");
  if (p.N == 0 || p.F == 0) return;
  require_pointer(p.dout, "swiglu_backward", "dout");
  require_pointer(p.dgate, "swiglu_backward", "dgate");
  require_pointer(p.dup, "swiglu_backward", "dup");
  const int64_t F = p.F;
#pragma omp parallel for if (parallel_worth(p.N * F)) schedule(static)
  for (int64_t n = 0; n < p.N; ++n)  // dgate[n], dup[n] (F) from dout[n], gate[n], up[n] (F)
    swiglu_grad_row(p.dgate + n * F, p.dup + n * F, p.dout + n * F, p.gate + n * F, p.up + n * F, F);
}

template void swiglu_forward<float>(const SwigluParams<float>&);
template void swiglu_forward<double>(const SwigluParams<double>&);
template void swiglu_backward<float>(const SwigluParams<float>&);
template void swiglu_backward<double>(const SwigluParams<double>&);

}  // namespace stepwise::cpu
