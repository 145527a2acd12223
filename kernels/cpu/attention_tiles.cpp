// Masking and row passes of the CPU flash attention (see attention_tiles.h). The float exp is cpu/fast_exp.h's
// vectorisable one; STEPWISE_VECTOR_CLONES builds AVX-512 / AVX2 / baseline versions of the row passes.
#include "cpu/attention_tiles.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "cpu/fast_exp.h"

namespace stepwise::cpu {

bool AttentionTiling::fill_visibility(const TileRange& t, int64_t j0, int64_t nk, const int32_t* seg,
                                      unsigned char* visible) const {
  const int64_t first_pos = q_offset + t.begin;
  if (seg == nullptr && j0 + nk - 1 <= first_pos) return true;
  if (seg == nullptr) {  // causal only: query begin+i sees the first pos - j0 + 1 keys of the tile (its first row not all)
    for (int64_t i = 0; i < t.count; ++i) {
      const int64_t seen = std::clamp<int64_t>(first_pos + i - j0 + 1, 0, nk);
      std::fill(visible + i * nk, visible + i * nk + seen, static_cast<unsigned char>(1));
      std::fill(visible + i * nk + seen, visible + (i + 1) * nk, static_cast<unsigned char>(0));
    }
    return false;
  }
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
      const float keep = static_cast<float>(visible[c]);  // 0 or 1; e is finite, so e * 0 == 0 (vectorises)
      s[c] = exp_vectorisable(s[c] - shift) * keep;
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
