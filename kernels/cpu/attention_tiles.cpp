// Masking and row passes of the CPU flash attention (see attention_tiles.h). The float exp is a range-reduced
// Taylor polynomial written so the compiler vectorises it; target_clones builds AVX-512 / AVX2 / baseline versions
// and picks one at load time, since the library itself is compiled for the baseline x86-64 ISA.
#include "cpu/attention_tiles.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

namespace stepwise::cpu {

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define STEPWISE_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define STEPWISE_VECTOR_CLONES
#endif

bool AttentionTiling::fill_visibility(const TileRange& t, int64_t j0, int64_t nk, const int32_t* seg,
                                      unsigned char* visible) const {
  const int64_t first_pos = q_offset + t.begin;
  if (seg == nullptr && j0 + nk - 1 <= first_pos) return true;
  bool all = true;
  const int32_t* seg_row = seg ? seg + t.b * Tk : nullptr;  // (Tk)
  for (int64_t i = 0; i < t.count; ++i) {
    const int64_t pos = first_pos + i;
    for (int64_t c = 0; c < nk; ++c) {
      const int64_t j = j0 + c;
      const bool see = j <= pos && (seg_row == nullptr || seg_row[j] == seg_row[pos]);
      visible[i * nk + c] = see;
      all = all && see;
    }
  }
  return all;
}

template <class T>
static inline T masked_max(const T* s, const unsigned char* visible, int64_t n, bool all_visible) {
  constexpr T lowest = -std::numeric_limits<T>::infinity();
  T best = lowest;
  if (all_visible) {
#pragma omp simd reduction(max : best)
    for (int64_t c = 0; c < n; ++c) best = best > s[c] ? best : s[c];
  } else {
#pragma omp simd reduction(max : best)
    for (int64_t c = 0; c < n; ++c) {
      const T x = visible[c] ? s[c] : lowest;
      best = best > x ? best : x;
    }
  }
  return best;
}

STEPWISE_VECTOR_CLONES
float masked_row_max(const float* s, const unsigned char* visible, int64_t n, bool all_visible) {
  return masked_max(s, visible, n, all_visible);
}
double masked_row_max(const double* s, const unsigned char* visible, int64_t n, bool all_visible) {
  return masked_max(s, visible, n, all_visible);
}

// exp(x) for x <= ~88: x = n ln2 + f with |f| <= ln2/2, exp(f) by its degree-7 Taylor series (truncation < 1e-8),
// times 2^n built in the exponent bits. Branch-free so that loops over it vectorise.
static inline float exp_vectorisable(float x) {
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

STEPWISE_VECTOR_CLONES
float exp_shifted_row(float* s, const unsigned char* visible, int64_t n, bool all_visible, float shift) {
  float sum = 0;
  if (all_visible) {
#pragma omp simd reduction(+ : sum)
    for (int64_t c = 0; c < n; ++c) {
      s[c] = exp_vectorisable(s[c] - shift);
      sum += s[c];
    }
  } else {
#pragma omp simd reduction(+ : sum)
    for (int64_t c = 0; c < n; ++c) {
      const float e = exp_vectorisable(s[c] - shift);
      s[c] = visible[c] ? e : 0.0f;
      sum += s[c];
    }
  }
  return sum;
}

double exp_shifted_row(double* s, const unsigned char* visible, int64_t n, bool all_visible, double shift) {
  double sum = 0;
  for (int64_t c = 0; c < n; ++c) {
    s[c] = all_visible || visible[c] ? std::exp(s[c] - shift) : 0.0;
    sum += s[c];
  }
  return sum;
}

}  // namespace stepwise::cpu
