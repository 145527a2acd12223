// Shared setup of the emulator tests of the tensor-core kernels (tests/emu/test_emu_*.cpp), on top of the GPU suite's
// helpers (tests/gpu/gpu_testing.h: random_vector, representable<T>, normalized_error): bf16-rounded random inputs
// for the CPU reference and their bf16 copies for the kernel, packed-document segment ids, the error of bf16 results.
#pragma once
#include <cstdint>
#include <random>
#include <vector>

#include "../gpu/gpu_testing.h"

namespace stepwise::emu_testing {

using bf16 = cuda::bf16;

using gpu_testing::normalized_error;
using gpu_testing::random_vector;
using gpu_testing::representable;

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

// normalized_error of a bf16 result (read as float).
inline double normalized_error(const std::vector<bf16>& got, const std::vector<float>& want) {
  return normalized_error(std::vector<float>(got.begin(), got.end()), want);
}

}  // namespace stepwise::emu_testing
