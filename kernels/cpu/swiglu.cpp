// CPU reference of the SwiGLU gate: out = silu(gate) * up with silu(g) = g * sigmoid(g), elementwise over (N, F).
// Backward: dup = dout * silu(gate); dgate = dout * up * sigmoid(gate) * (1 + gate * (1 - sigmoid(gate))).
#include <cmath>

#include "cpu/check.h"
#include "cpu/parallel.h"
#include "ops/dense.h"

namespace stepwise::cpu {

template <class T>
static inline T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));  // exp overflow gives 1/inf = 0, the right limit
}

template <class T>
static void check_swiglu(const SwigluParams<T>& p, const char* op) {
  require_nonnegative(p.N, op, "N");
  require_nonnegative(p.F, op, "F");
  if (p.N == 0 || p.F == 0) return;
  require_pointer(p.gate, op, "gate");
  require_pointer(p.up, op, "up");
}

template <class T>
void swiglu_forward(const SwigluParams<T>& p) {
  check_swiglu(p, "swiglu_forward");
  if (p.N == 0 || p.F == 0) return;
  require_pointer(p.out, "swiglu_forward", "out");
  const int64_t F = p.F;
#pragma omp parallel for if (parallel_worth(p.N * F)) schedule(static)
  for (int64_t n = 0; n < p.N; ++n) {
    const T* g = p.gate + n * F;  // (F)
    const T* u = p.up + n * F;    // (F)
    T* y = p.out + n * F;         // (F)
    for (int64_t f = 0; f < F; ++f) y[f] = g[f] * sigmoid(g[f]) * u[f];
  }
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
  for (int64_t n = 0; n < p.N; ++n) {
    const T* g = p.gate + n * F;  // (F)
    const T* u = p.up + n * F;    // (F)
    const T* dy = p.dout + n * F; // (F)
    T* dg = p.dgate + n * F;      // (F)
    T* du = p.dup + n * F;        // (F)
    for (int64_t f = 0; f < F; ++f) {
      const T s = sigmoid(g[f]);
      const T silu = g[f] * s;
      dg[f] = dy[f] * u[f] * s * (T(1) + g[f] * (T(1) - s));
      du[f] = dy[f] * silu;
    }
  }
}

template void swiglu_forward<float>(const SwigluParams<float>&);
template void swiglu_forward<double>(const SwigluParams<double>&);
template void swiglu_backward<float>(const SwigluParams<float>&);
template void swiglu_backward<double>(const SwigluParams<double>&);

}  // namespace stepwise::cpu
