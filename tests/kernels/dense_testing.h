// Shared helpers for the dense-op tests: precision casts and the normalised error used to compare a float run with a
// double run of the same op on the same inputs.
#pragma once
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace stepwise::testing {

template <class To, class From>
std::vector<To> cast_vector(const std::vector<From>& v) {
  return std::vector<To>(v.begin(), v.end());
}

// ||a - b|| / ||b|| (L2), with ||b|| floored at 1e-30 so an all-zero reference still compares.
inline double normalised_error(const std::vector<double>& a, const std::vector<double>& b) {
  double diff = 0, ref = 0;
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    diff += (a[i] - b[i]) * (a[i] - b[i]);
    ref += b[i] * b[i];
  }
  if (a.size() != b.size()) return INFINITY;
  return std::sqrt(diff) / std::max(std::sqrt(ref), 1e-30);
}

// Uniform integers in [lo, hi], reproducible from the seed.
inline std::vector<int32_t> random_ids(size_t n, uint64_t seed, int32_t lo, int32_t hi) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> dist(lo, hi);
  std::vector<int32_t> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

// Element-wise a - b (for "+=" checks: gradient = after - before).
inline std::vector<double> minus(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> r(a.size());
  for (size_t i = 0; i < a.size(); ++i) r[i] = a[i] - b[i];
  return r;
}

}  // namespace stepwise::testing
