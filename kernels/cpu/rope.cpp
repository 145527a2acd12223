// CPU reference of rotary embedding, rotate-half (NeoX) pairing: pair i of a head is (x[i], x[i + D/2]), i < D/2,
// rotated by angle pos * theta^(-2i/D) (angles and cos/sin in double). Backward applies the inverse rotation to dx.
#include <cmath>
#include <vector>

#include "cpu/check.h"
#include "cpu/parallel.h"
#include "ops/dense.h"

namespace stepwise::cpu {

// Rotates every head of every token in place by +angle (sign = +1) or -angle (sign = -1).
template <class T>
static void rope_rotate(const RopeParams<T>& p, double sign, const char* op) {
  require_nonnegative(p.N, op, "N");
  require_nonnegative(p.H, op, "H");
  if (p.D <= 0 || p.D % 2 != 0) kernel_fail(op, "D = ", p.D, " must be positive and even");
  if (!(p.theta > 0)) kernel_fail(op, "theta = ", p.theta, " must be positive");
  if (p.N == 0 || p.H == 0) return;
  require_pointer(p.x, op, "x");
  require_pointer(p.pos, op, "pos");
  const int64_t half = p.D / 2;
  std::vector<double> inv_freq(half);  // (D/2) theta^(-2i/D)
  for (int64_t i = 0; i < half; ++i) inv_freq[i] = std::pow(p.theta, -2.0 * static_cast<double>(i) / p.D);
#pragma omp parallel if (parallel_worth(p.N * p.H * p.D))
  {
    std::vector<T> cos_a(half), sin_a(half);  // (D/2) per token, shared by its H heads
#pragma omp for schedule(static)
    for (int64_t n = 0; n < p.N; ++n) {
      for (int64_t i = 0; i < half; ++i) {
        const double angle = static_cast<double>(p.pos[n]) * inv_freq[i];
        cos_a[i] = static_cast<T>(std::cos(angle));
        sin_a[i] = static_cast<T>(sign * std::sin(angle));
      }
      for (int64_t h = 0; h < p.H; ++h) {
        T* lo = p.x + (n * p.H + h) * p.D;  // (D/2) first halves
        T* hi = lo + half;                   // (D/2) second halves
        for (int64_t i = 0; i < half; ++i) {
          const T a = lo[i], b = hi[i];
          lo[i] = a * cos_a[i] - b * sin_a[i];
          hi[i] = b * cos_a[i] + a * sin_a[i];
        }
      }
    }
  }
}

template <class T>
void rope_forward(const RopeParams<T>& p) {
  rope_rotate(p, +1.0, "rope_forward");
}

template <class T>
void rope_backward(const RopeParams<T>& p) {
  rope_rotate(p, -1.0, "rope_backward");
}

template void rope_forward<float>(const RopeParams<float>&);
template void rope_forward<double>(const RopeParams<double>&);
template void rope_backward<float>(const RopeParams<float>&);
template void rope_backward<double>(const RopeParams<double>&);

}  // namespace stepwise::cpu
