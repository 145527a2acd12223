// Implementation of FP8 E4M3 encode/decode and 128x128 block (de)quantisation (see fp8.h). Pure bit arithmetic on
// the f32 representation, so results do not depend on the floating-point rounding mode.
#include "ckpt/fp8.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace stepwise {

namespace {
constexpr uint8_t kNaNCode = 0x7F;
constexpr uint8_t kMaxCode = 0x7E;  // 1.75 * 2^8 = 448

// Rounds the non-negative integer (value >> shift), with the shifted-out bits, to nearest even.
uint32_t shift_round_even(uint32_t value, int shift) {
  if (shift <= 0) return value;
  if (shift >= 32) return 0;
  const uint32_t kept = value >> shift;
  const uint32_t rest = value & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  return kept + ((rest > half || (rest == half && (kept & 1u))) ? 1u : 0u);
}
}  // namespace

uint8_t f32_to_fp8_e4m3(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  const uint8_t sign = static_cast<uint8_t>((bits >> 24) & 0x80u);
  const uint32_t abs_bits = bits & 0x7FFFFFFFu;
  if (abs_bits > 0x7F800000u) return sign | kNaNCode;           // NaN
  if (abs_bits >= 0x43E00000u) return sign | kMaxCode;          // >= 448 (incl. inf): rounds to 448 or saturates
  const int exp32 = static_cast<int>(abs_bits >> 23);          // biased by 127; 0 for f32 subnormals / zero
  const uint32_t mant32 = abs_bits & 0x7FFFFFu;
  // e4m3 value = significand * 2^-9 with significand in units of the smallest subnormal (2^-9). For a normal f32,
  // significand = (2^23 + mant32) * 2^(exp32 - 127 - 23 + 9); the result's exponent bits follow from the carry.
  uint32_t code;
  if (exp32 >= 121) {  // |x| >= 2^-6: normal e4m3 range; keep 3 mantissa bits
    const uint32_t e8 = static_cast<uint32_t>(exp32 - 127 + 7);  // 1..15
    code = shift_round_even((e8 << 23) | mant32, 20);           // mantissa carry bumps the exponent correctly
  } else if (exp32 == 0) {
    code = 0;  // f32 subnormals (< 2^-126) are far below half the smallest e4m3 subnormal
  } else {     // subnormal e4m3 range: significand = (2^23 + mant32) >> (23 - (exp32 - 127 + 9))
    const int shift = 23 - (exp32 - 127 + 9);                  // >= 21
    code = shift_round_even((1u << 23) | mant32, shift);       // 0..8; 8 is the smallest normal (code 0x08)
  }
  return sign | static_cast<uint8_t>(std::min<uint32_t>(code, kMaxCode));
}

float fp8_e4m3_to_f32(uint8_t code) {
  const bool negative = (code & 0x80u) != 0;
  const int exp8 = (code >> 3) & 0xF;
  const int mant8 = code & 0x7;
  float v;
  if (exp8 == 0xF && mant8 == 0x7) {
    v = std::numeric_limits<float>::quiet_NaN();
  } else if (exp8 == 0) {
    v = std::ldexp(static_cast<float>(mant8), -9);
  } else {
    v = std::ldexp(static_cast<float>(8 + mant8), exp8 - 7 - 3);
  }
  return negative ? -v : v;
}

std::vector<int64_t> fp8_scale_shape(int64_t rows, int64_t cols) {
  return {(rows + kFp8BlockSize - 1) / kFp8BlockSize, (cols + kFp8BlockSize - 1) / kFp8BlockSize};
}

void fp8_block_quantize(const float* w, int64_t rows, int64_t cols, uint8_t* q, float* scale_inv) {
  const int64_t block_cols = (cols + kFp8BlockSize - 1) / kFp8BlockSize;
  for (int64_t r0 = 0; r0 < rows; r0 += kFp8BlockSize) {
    const int64_t r1 = std::min(rows, r0 + kFp8BlockSize);
    for (int64_t c0 = 0; c0 < cols; c0 += kFp8BlockSize) {
      const int64_t c1 = std::min(cols, c0 + kFp8BlockSize);
      float amax = 0.0f;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) amax = std::max(amax, std::fabs(w[r * cols + c]));
      const float s = amax > 0.0f ? amax / kFp8E4M3Max : 1.0f;  // dequant multiplier of this block
      scale_inv[(r0 / kFp8BlockSize) * block_cols + c0 / kFp8BlockSize] = s;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) q[r * cols + c] = f32_to_fp8_e4m3(w[r * cols + c] / s);
    }
  }
}

void fp8_block_dequantize(const uint8_t* q, const float* scale_inv, int64_t rows, int64_t cols, float* w) {
  const int64_t block_cols = (cols + kFp8BlockSize - 1) / kFp8BlockSize;
  for (int64_t r = 0; r < rows; ++r) {
    const float* srow = scale_inv + (r / kFp8BlockSize) * block_cols;
    for (int64_t c = 0; c < cols; ++c) w[r * cols + c] = fp8_e4m3_to_f32(q[r * cols + c]) * srow[c / kFp8BlockSize];
  }
}

}  // namespace stepwise
