// A branch-free float exp that compilers vectorise, shared by the CPU kernels' softmax-style row passes (attention
// tiles, LM head loss). Relative error ~1e-7 over the range softmax uses; private to kernels/cpu.
#pragma once
#include <algorithm>
#include <bit>
#include <cstdint>

namespace stepwise::cpu {

// Functions that loop over exp_vectorisable carry this: AVX-512 / AVX2 / baseline clones picked at load time, since
// the library itself is compiled for the baseline x86-64 ISA.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define STEPWISE_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define STEPWISE_VECTOR_CLONES
#endif

// exp(x) for x <= ~88: x = n ln2 + f with |f| <= ln2/2, exp(f) by its degree-7 Taylor series (truncation < 1e-8),
// times 2^n built in the exponent bits. Inputs below -87 flush to ~1e-38.
inline float exp_vectorisable(float x) {
  x = std::max(x, -87.0f);
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round(x / ln2) via 1.5 * 2^23
  const float f = (x - n * 0.693145751953125f) - n * 1.42860682030941723e-6f;  // ln2 split in two parts
  float poly = 1.0f / 5040.0f;
  poly = poly * f + 1.0f / 720.0f;
  poly = poly * f + 1.0f / 120.0f;
  poly = poly * f + 1.0f / 24.0f;
  poly = poly * f + 1.0f / 6.0f;
  poly = poly * f + 0.5f;
  poly = poly * f + 1.0f;
  poly = poly * f + 1.0f;
  const float two_n = std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
  return poly * two_n;
}

}  // namespace stepwise::cpu
