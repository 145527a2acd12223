// CPU reference of rotary embedding, rotate-half (NeoX) pairing: pair i of a head is (x[i], x[i + D/2]), i < D/2,
// rotated by angle pos * theta^(-2i/D) (angles and cos/sin in double). Backward applies the inverse rotation to dx.
// The cos/sin values of positions below 2^17 are kept in a per-thread table (same values, computed once).
#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu/check.h"
#include "cpu/parallel.h"
#include "ops/dense.h"

namespace stepwise::cpu {

namespace {

constexpr int64_t kTablePositions = int64_t(1) << 17;  // positions [0, this) come from the per-thread table

// cos / sin of pos * theta^(-2i/D) for positions [0, size), computed in double exactly as the direct path does and
// kept per thread: a training step rotates the same positions 4 times per layer. Rebuilt when theta or D changes.
template <class T>
struct RopeTable {
  double theta = 0;
  int64_t D = 0, size = 0;
  std::vector<T> cos_a, sin_a;  // (size, D/2) each

  void cover(double new_theta, int64_t new_D, int64_t positions, const std::vector<double>& inv_freq) {
    if (new_theta != theta || new_D != D) {
      theta = new_theta, D = new_D, size = 0;
      cos_a.clear();
      sin_a.clear();
    }
    if (positions <= size) return;
    const int64_t half = D / 2, from = size;
    cos_a.resize(static_cast<size_t>(positions * half));
    sin_a.resize(cos_a.size());
#pragma omp parallel for if (parallel_worth((positions - from) * half)) schedule(static)
    for (int64_t pos = from; pos < positions; ++pos)
      for (int64_t i = 0; i < half; ++i) {
        const double angle = static_cast<double>(pos) * inv_freq[i];
        cos_a[pos * half + i] = static_cast<T>(std::cos(angle));
        sin_a[pos * half + i] = static_cast<T>(std::sin(angle));
      }
    size = positions;
  }
};

// Rotates the H heads of one token in place: pair (lo[i], hi[i]) by the angle whose cos / sin are given.
template <class T>
void rotate_token(T* x, int64_t H, int64_t D, const T* cos_a, const T* sin_a) {
  const int64_t half = D / 2;
  for (int64_t h = 0; h < H; ++h) {
    T* lo = x + h * D;  // (D/2) first halves
    T* hi = lo + half;  // (D/2) second halves
    for (int64_t i = 0; i < half; ++i) {
      const T a = lo[i], b = hi[i];
      lo[i] = a * cos_a[i] - b * sin_a[i];
      hi[i] = b * cos_a[i] + a * sin_a[i];
    }
  }
}

}  // namespace

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
  const auto [lowest, highest] = std::minmax_element(p.pos, p.pos + p.N);
  const bool tabled = *lowest >= 0 && *highest < kTablePositions;
  thread_local RopeTable<T> table;
  if (tabled) table.cover(p.theta, p.D, int64_t{*highest} + 1, inv_freq);
  const RopeTable<T>& shared = table;  // the calling thread's table: inside the region `table` is each thread's own
#pragma omp parallel if (parallel_worth(p.N * p.H * p.D))
  {
    std::vector<T> cos_a(half), sin_a(half);  // (D/2) per token, shared by its H heads
#pragma omp for schedule(static)
    for (int64_t n = 0; n < p.N; ++n) {
      if (tabled) {
        const T* c = shared.cos_a.data() + int64_t{p.pos[n]} * half;
        const T* s = shared.sin_a.data() + int64_t{p.pos[n]} * half;
        for (int64_t i = 0; i < half; ++i) {
          cos_a[i] = c[i];
          sin_a[i] = sign > 0 ? s[i] : -s[i];  // negation is exact: the same value as rounding -sin
        }
      } else {
        for (int64_t i = 0; i < half; ++i) {
          const double angle = static_cast<double>(p.pos[n]) * inv_freq[i];
          cos_a[i] = static_cast<T>(std::cos(angle));
          sin_a[i] = static_cast<T>(sign * std::sin(angle));
        }
      }
      rotate_token(p.x + n * p.H * p.D, p.H, p.D, cos_a.data(), sin_a.data());
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
