// CPU reference of the optimizer ops: one AdamW step (decoupled weight decay, bias correction, fp32 moments), the
// squared norm in double for gradient clipping, in-place scaling and a finite check. All OpenMP over elements.
// sum_squares reduces fixed-size blocks then adds the block sums in order, so its result ignores the thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/check.h"
#include "cpu/parallel.h"
#include "ops/optim.h"

namespace stepwise::cpu {

namespace {

// Elements [begin, end) of one AdamW step. This file is built with -fno-math-errno (kernels/CMakeLists.txt): the
// sqrt is then a plain sqrtps and the loop vectorises (with errno, GCC keeps a scalar sqrtss and a branch per
// element); IEEE sqrt either way, so the results are the same.
void adamw_range(const AdamWParams& p, int64_t begin, int64_t end, float bias1, float bias2) {
  const float b1 = p.beta1, b2 = p.beta2, lr = p.lr, eps = p.eps, wd = p.weight_decay;
  float* __restrict param = p.param;
  float* __restrict m_state = p.m;
  float* __restrict v_state = p.v;
  const float* __restrict grad = p.grad;
#pragma omp simd
  for (int64_t i = begin; i < end; ++i) {
    const float g = grad[i];
    const float m = b1 * m_state[i] + (1.0f - b1) * g;
    const float v = b2 * v_state[i] + (1.0f - b2) * g * g;
    m_state[i] = m;
    v_state[i] = v;
    const float update = (m / bias1) / (std::sqrt(v / bias2) + eps) + wd * param[i];
    param[i] -= lr * update;
  }
}

}  // namespace

void adamw_update(const AdamWParams& p) {
  const char* op = "adamw_update";
  require_nonnegative(p.n, op, "n");
  if (p.step < 1) kernel_fail(op, "step = ", p.step, " must be >= 1 (steps count from 1)");
  if (!(p.beta1 >= 0 && p.beta1 < 1)) kernel_fail(op, "beta1 = ", p.beta1, " must be in [0, 1)");
  if (!(p.beta2 >= 0 && p.beta2 < 1)) kernel_fail(op, "beta2 = ", p.beta2, " must be in [0, 1)");
  if (p.n == 0) return;
  require_pointer(p.param, op, "param");
  require_pointer(p.m, op, "m");
  require_pointer(p.v, op, "v");
  require_pointer(p.grad, op, "grad");
  const double step = static_cast<double>(p.step);
  const float bias1 = static_cast<float>(1.0 - std::pow(static_cast<double>(p.beta1), step));  // 1 - b1^step
  const float bias2 = static_cast<float>(1.0 - std::pow(static_cast<double>(p.beta2), step));  // 1 - b2^step
  constexpr int64_t kBlock = int64_t(1) << 13;  // elements per task
  const int64_t blocks = (p.n + kBlock - 1) / kBlock;
#pragma omp parallel for if (parallel_worth(p.n)) schedule(static)
  for (int64_t b = 0; b < blocks; ++b) adamw_range(p, b * kBlock, std::min(p.n, (b + 1) * kBlock), bias1, bias2);
}

double sum_squares(const float* x, int64_t n) {
  require_nonnegative(n, "sum_squares", "n");
  if (n == 0) return 0.0;
  require_pointer(x, "sum_squares", "x");
  constexpr int64_t kBlock = int64_t(1) << 16;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> partial(blocks);  // (blocks)
#pragma omp parallel for if (parallel_worth(n)) schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t end = std::min(n, (b + 1) * kBlock);
    double s = 0;
    for (int64_t i = b * kBlock; i < end; ++i) s += static_cast<double>(x[i]) * static_cast<double>(x[i]);
    partial[b] = s;
  }
  double total = 0;
  for (double s : partial) total += s;
  return total;
}

void scale_inplace(float* x, int64_t n, float s) {
  require_nonnegative(n, "scale_inplace", "n");
  if (n == 0) return;
  require_pointer(x, "scale_inplace", "x");
#pragma omp parallel for simd if (parallel : parallel_worth(n)) schedule(static)
  for (int64_t i = 0; i < n; ++i) x[i] *= s;
}

bool all_finite(const float* x, int64_t n) {
  require_nonnegative(n, "all_finite", "n");
  if (n == 0) return true;
  require_pointer(x, "all_finite", "x");
  int finite = 1;
#pragma omp parallel for if (parallel_worth(n)) reduction(& : finite) schedule(static)
  for (int64_t i = 0; i < n; ++i) finite &= std::isfinite(x[i]) ? 1 : 0;
  return finite != 0;
}

}  // namespace stepwise::cpu
