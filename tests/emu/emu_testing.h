// Shared setup of the emulator tests of the tensor-core kernels (tests/emu/test_emu_*.cpp): random inputs rounded to
// what the kernel's element type holds (so the CPU reference sees exactly the kernel's inputs), packed-document
// segment ids, and the normalised error ||got - want|| / ||want|| (infinite on a non-finite value or a size mismatch).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include <cuda_bf16.h>

namespace stepwise::emu_testing {

using bf16 = __nv_bfloat16;

// n uniform values in [lo, hi).
inline std::vector<float> random_vector(int64_t n, uint64_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(static_cast<size_t>(n));
  for (auto& x : v) x = dist(rng);
  return v;
}

// The values as T holds them (bf16: rounded to nearest even; float: unchanged).
template <class T>
std::vector<float> representable(std::vector<float> v) {
  for (auto& x : v) x = static_cast<float>(static_cast<T>(x));
  return v;
}

// n uniform values in [lo, hi), rounded to bf16 (as floats, for the CPU reference).
inline std::vector<float> random_bf16_values(int64_t n, uint64_t seed, float lo, float hi) {
  return representable<bf16>(random_vector(n, seed, lo, hi));
}

// The kernel's copy of bf16-representable values (exact).
inline std::vector<bf16> to_bf16(const std::vector<float>& v) { return std::vector<bf16>(v.begin(), v.end()); }

// Packed documents of B sequences of Tk keys, (B, Tk): segment ids from 0 growing by one at random boundaries
// (document lengths 1 .. Tk / 3 + 1).
inline std::vector<int32_t> random_segments(int64_t B, int64_t Tk, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> len(1, Tk / 3 + 1);
  std::vector<int32_t> seg;
  seg.reserve(static_cast<size_t>(B * Tk));
  for (int64_t b = 0; b < B; ++b) {
    int32_t id = 0;
    for (int64_t j = 0, left = len(rng); j < Tk; ++j, --left) {
      if (left == 0) ++id, left = len(rng);
      seg.push_back(id);
    }
  }
  return seg;
}

// ||got - want|| / ||want|| over all elements; got's elements (float or bf16) are read as float.
template <class G>
double normalized_error(const std::vector<G>& got, const std::vector<float>& want) {
  if (got.size() != want.size()) return std::numeric_limits<double>::infinity();
  double diff = 0, ref = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    const double g = static_cast<float>(got[i]);
    if (!std::isfinite(g)) return std::numeric_limits<double>::infinity();
    diff += (g - want[i]) * (g - want[i]);
    ref += double(want[i]) * want[i];
  }
  return std::sqrt(diff / std::max(ref, 1e-30));
}

}  // namespace stepwise::emu_testing
