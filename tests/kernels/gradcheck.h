// Test helpers for kernels: deterministic random fills and a central-difference gradient check in double precision.
// Usage: define a scalar loss L(x) = sum(out * g) with a fixed random g (so dout = g), compute the analytic gradient
// with the op's backward, then expect_gradient(loss_fn, x, analytic, "rmsnorm dinp").
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace stepwise::testing {

// Uniform values in [lo, hi), reproducible from the seed.
template <class T>
std::vector<T> random_vector(size_t n, uint64_t seed, double lo = -1.0, double hi = 1.0) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<T> v(n);
  for (auto& x : v) x = static_cast<T>(dist(rng));
  return v;
}

// Compares `analytic[i]` with (L(x + h e_i) - L(x - h e_i)) / 2h for every i (or every `stride`-th i when large).
// Relative error |a - n| / max(1, |a|, |n|) must stay below tol.
inline void expect_gradient(const std::function<double()>& loss, std::vector<double>& x,
                            const std::vector<double>& analytic, const std::string& what, double tol = 1e-6,
                            double h = 1e-6, size_t stride = 1) {
  ASSERT_EQ(x.size(), analytic.size()) << what;
  double worst = 0;
  size_t worst_i = 0;
  for (size_t i = 0; i < x.size(); i += stride) {
    const double saved = x[i];
    x[i] = saved + h;
    const double lp = loss();
    x[i] = saved - h;
    const double lm = loss();
    x[i] = saved;
    const double numeric = (lp - lm) / (2 * h);
    const double err = std::abs(numeric - analytic[i]) / std::max({1.0, std::abs(numeric), std::abs(analytic[i])});
    if (err > worst) {
      worst = err;
      worst_i = i;
    }
  }
  EXPECT_LT(worst, tol) << what << ": worst relative error at index " << worst_i << " (analytic "
                        << analytic[worst_i] << ")";
}

// sum(a[i] * b[i]) in double.
template <class A, class B>
double dot(const std::vector<A>& a, const std::vector<B>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  return s;
}

}  // namespace stepwise::testing
