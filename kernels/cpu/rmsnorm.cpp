// CPU reference of RMSNorm, computed in T (fp32 for float): out = inp * rstd * weight, rstd = 1/sqrt(mean(inp^2) + eps).
// Backward: dinp = rstd * (weight*dout - inp * rstd^2 * mean(weight*dout*inp)); dweight += sum_n dout * inp * rstd.
// dweight is reduced over column blocks with rows in order, so it is race-free and independent of the thread count.
#include <algorithm>
#include <cmath>

#include "cpu/check.h"
#include "cpu/parallel.h"
#include "ops/dense.h"

namespace stepwise::cpu {

template <class T>
static void check_rmsnorm(const RmsNormParams<T>& p, const char* op) {
  require_nonnegative(p.N, op, "N");
  if (p.C <= 0) kernel_fail(op, "C = ", p.C, " must be positive");
  if (!(p.eps >= T(0))) kernel_fail(op, "eps = ", p.eps, " must be >= 0");
  if (p.N == 0) return;
  require_pointer(p.inp, op, "inp");
  require_pointer(p.weight, op, "weight");
  require_pointer(p.rstd, op, "rstd");
}

template <class T>
void rmsnorm_forward(const RmsNormParams<T>& p) {
  check_rmsnorm(p, "rmsnorm_forward");
  if (p.N == 0) return;
  require_pointer(p.out, "rmsnorm_forward", "out");
  const int64_t C = p.C;
#pragma omp parallel for if (parallel_worth(p.N * C)) schedule(static)
  for (int64_t n = 0; n < p.N; ++n) {
    const T* x = p.inp + n * C;  // (C)
    T* y = p.out + n * C;        // (C)
    T sum_sq = 0;
    for (int64_t c = 0; c < C; ++c) sum_sq += x[c] * x[c];
    const T rstd = T(1) / std::sqrt(sum_sq / T(C) + p.eps);
    p.rstd[n] = rstd;
    for (int64_t c = 0; c < C; ++c) y[c] = x[c] * rstd * p.weight[c];
  }
}

template <class T>
void rmsnorm_backward(const RmsNormParams<T>& p) {
  check_rmsnorm(p, "rmsnorm_backward");
  if (p.N == 0) return;
  require_pointer(p.dout, "rmsnorm_backward", "dout");
  require_pointer(p.dinp, "rmsnorm_backward", "dinp");
  require_pointer(p.dweight, "rmsnorm_backward", "dweight");
  const int64_t C = p.C;
#pragma omp parallel for if (parallel_worth(p.N * C)) schedule(static)
  for (int64_t n = 0; n < p.N; ++n) {
    const T* x = p.inp + n * C;   // (C)
    const T* g = p.dout + n * C;  // (C)
    T* dx = p.dinp + n * C;       // (C)
    const T rstd = p.rstd[n];
    T dot = 0;  // sum_c weight*dout*inp
    for (int64_t c = 0; c < C; ++c) dot += p.weight[c] * g[c] * x[c];
    const T coef = rstd * rstd * dot / T(C);
    for (int64_t c = 0; c < C; ++c) {
      const T d = rstd * (p.weight[c] * g[c] - x[c] * coef);
      dx[c] = p.accumulate_dinp ? dx[c] + d : d;
    }
  }
  constexpr int64_t kBlock = 64;  // columns per task
  const int64_t blocks = (C + kBlock - 1) / kBlock;
#pragma omp parallel for if (parallel_worth(p.N * C)) schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t c0 = b * kBlock, c1 = std::min(C, c0 + kBlock);
    for (int64_t n = 0; n < p.N; ++n) {
      const T* x = p.inp + n * C;
      const T* g = p.dout + n * C;
      const T rstd = p.rstd[n];
      for (int64_t c = c0; c < c1; ++c) p.dweight[c] += g[c] * x[c] * rstd;
    }
  }
}

template void rmsnorm_forward<float>(const RmsNormParams<float>&);
template void rmsnorm_forward<double>(const RmsNormParams<double>&);
template void rmsnorm_backward<float>(const RmsNormParams<float>&);
template void rmsnorm_backward<double>(const RmsNormParams<double>&);

}  // namespace stepwise::cpu
