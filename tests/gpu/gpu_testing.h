// Helpers for the GPU suite (label gpu): skip without a device, random inputs on the host, upload as fp32 or bf16,
// poisoned (NaN-filled) output buffers so unwritten elements fail, and the normalised error used by every comparison
// of a CUDA op with its CPU reference: ||got - want|| / ||want|| (infinite when got has a non-finite value).
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <type_traits>
#include <vector>

#include "cuda/device.h"

namespace stepwise::gpu_testing {

using cuda::bf16;

#define STEPWISE_REQUIRE_GPU()                                                    \
  do {                                                                            \
    if (::stepwise::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device"; \
  } while (0)

// Thresholds of the normalised error per element type (issue 6): fp32 1e-5, bf16 1e-2.
template <class T> constexpr double tolerance() { return std::is_same_v<T, float> ? 1e-5 : 1e-2; }

inline std::vector<float> random_vector(int64_t n, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  return v;
}

inline float round_trip(float x, float) { return x; }
inline float round_trip(float x, bf16) { return __bfloat162float(__float2bfloat16_rn(x)); }

// Rounds host values to what T can hold (so the CPU reference sees exactly the device's inputs).
template <class T>
std::vector<float> representable(std::vector<float> v) {
  for (auto& x : v) x = round_trip(x, T{});
  return v;
}

template <class T>
cuda::DeviceBuffer<T> upload(const std::vector<float>& host) {
  std::vector<T> typed(host.size());
  for (size_t i = 0; i < host.size(); ++i) typed[i] = static_cast<T>(host[i]);
  return cuda::DeviceBuffer<T>(typed);
}

template <class T>
std::vector<float> download(const cuda::DeviceBuffer<T>& d) {
  const std::vector<T> typed = d.download();
  std::vector<float> out(typed.size());
  for (size_t i = 0; i < typed.size(); ++i) out[i] = static_cast<float>(typed[i]);
  return out;
}

// A device buffer of n elements filled with NaN.
template <class T>
cuda::DeviceBuffer<T> poisoned(int64_t n) {
  return upload<T>(std::vector<float>(static_cast<size_t>(n), std::numeric_limits<float>::quiet_NaN()));
}

inline double normalized_error(const std::vector<float>& got, const std::vector<float>& want) {
  if (got.size() != want.size()) return std::numeric_limits<double>::infinity();
  double diff = 0, ref = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i])) return std::numeric_limits<double>::infinity();
    diff += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    ref += double(want[i]) * want[i];
  }
  return std::sqrt(diff / std::max(ref, 1e-30));
}

}  // namespace stepwise::gpu_testing
