// Tests of FP8 E4M3 encode/decode: all 256 codes (values, ordering, round trip), every rounding midpoint, saturation
// and NaN handling, a brute-force nearest-value oracle on random inputs, and 128x128 block quantisation error bounds.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "ckpt/fp8.h"

using namespace stepwise;

namespace {
bool is_nan_code(int c) { return (c & 0x7F) == 0x7F; }

// The oracle: the finite e4m3 value nearest to x by scanning every code (ties to the even code), saturating.
uint8_t nearest_code_by_scan(float x) {
  const float a = std::fabs(x);
  int best = 0;
  double best_err = std::numeric_limits<double>::infinity();
  for (int c = 0; c <= 0x7E; ++c) {
    const double err = std::fabs(static_cast<double>(fp8_e4m3_to_f32(static_cast<uint8_t>(c))) - a);
    if (err < best_err || (err == best_err && (c & 1) == 0)) {
      best = c;
      best_err = err;
    }
  }
  return static_cast<uint8_t>(best | (std::signbit(x) ? 0x80 : 0));
}
}  // namespace

TEST(Fp8, KnownCodes) {
  EXPECT_EQ(fp8_e4m3_to_f32(0x00), 0.0f);
  EXPECT_TRUE(std::signbit(fp8_e4m3_to_f32(0x80)));
  EXPECT_EQ(fp8_e4m3_to_f32(0x01), std::ldexp(1.0f, -9));   // smallest subnormal
  EXPECT_EQ(fp8_e4m3_to_f32(0x07), 7 * std::ldexp(1.0f, -9));
  EXPECT_EQ(fp8_e4m3_to_f32(0x08), std::ldexp(1.0f, -6));   // smallest normal
  EXPECT_EQ(fp8_e4m3_to_f32(0x38), 1.0f);
  EXPECT_EQ(fp8_e4m3_to_f32(0x3C), 1.5f);
  EXPECT_EQ(fp8_e4m3_to_f32(0x7E), 448.0f);
  EXPECT_EQ(fp8_e4m3_to_f32(0x78), 256.0f);
  EXPECT_EQ(fp8_e4m3_to_f32(0xFE), -448.0f);
  EXPECT_TRUE(std::isnan(fp8_e4m3_to_f32(0x7F)));
  EXPECT_TRUE(std::isnan(fp8_e4m3_to_f32(0xFF)));
}

TEST(Fp8, AllCodesOrderedFiniteAndSymmetric) {
  int nan_codes = 0;
  for (int c = 0; c < 256; ++c) {
    const float v = fp8_e4m3_to_f32(static_cast<uint8_t>(c));
    if (is_nan_code(c)) {
      EXPECT_TRUE(std::isnan(v)) << c;
      ++nan_codes;
      continue;
    }
    EXPECT_TRUE(std::isfinite(v)) << c;
    EXPECT_LE(std::fabs(v), kFp8E4M3Max) << c;
    EXPECT_EQ(fp8_e4m3_to_f32(static_cast<uint8_t>(c ^ 0x80)), -v) << c;   // sign bit only flips the sign
  }
  EXPECT_EQ(nan_codes, 2);
  for (int c = 0; c < 0x7E; ++c)   // non-negative codes increase strictly with the code
    EXPECT_LT(fp8_e4m3_to_f32(static_cast<uint8_t>(c)), fp8_e4m3_to_f32(static_cast<uint8_t>(c + 1))) << c;
  for (int c = 0; c < 0x7D; ++c) {  // equal spacing inside a binade: the spacing doubles only at a binade edge
    const float step0 = fp8_e4m3_to_f32(static_cast<uint8_t>(c + 1)) - fp8_e4m3_to_f32(static_cast<uint8_t>(c));
    const float step1 = fp8_e4m3_to_f32(static_cast<uint8_t>(c + 2)) - fp8_e4m3_to_f32(static_cast<uint8_t>(c + 1));
    EXPECT_TRUE(step1 == step0 || (step1 == 2 * step0 && ((c + 1) & 7) == 0 && c + 1 > 8)) << c;
  }
}

TEST(Fp8, AllCodesRoundTrip) {
  for (int c = 0; c < 256; ++c) {
    const uint8_t code = static_cast<uint8_t>(c);
    const uint8_t back = f32_to_fp8_e4m3(fp8_e4m3_to_f32(code));
    if (is_nan_code(c))
      EXPECT_TRUE(is_nan_code(back)) << c;
    else
      EXPECT_EQ(back, code) << c;
  }
}

TEST(Fp8, EveryMidpointRoundsToEvenAndNeighboursToNearest) {
  for (int c = 0; c < 0x7E; ++c) {
    for (int sign : {0, 0x80}) {
      const uint8_t lo = static_cast<uint8_t>(c | sign), hi = static_cast<uint8_t>((c + 1) | sign);
      const float a = fp8_e4m3_to_f32(lo), b = fp8_e4m3_to_f32(hi);
      const float mid = (a + b) / 2;   // exact: both have 4 significant bits
      ASSERT_EQ(static_cast<double>(mid), (static_cast<double>(a) + b) / 2);
      EXPECT_EQ(f32_to_fp8_e4m3(mid), (c & 1) ? hi : lo) << "midpoint after code " << c;
      EXPECT_EQ(f32_to_fp8_e4m3(std::nextafter(mid, b)), hi) << c;
      EXPECT_EQ(f32_to_fp8_e4m3(std::nextafter(mid, a)), lo) << c;
    }
  }
}

TEST(Fp8, SaturatesAndKeepsNaN) {
  const float inf = std::numeric_limits<float>::infinity();
  for (float x : {448.0f, 449.0f, 464.0f, 465.0f, 480.0f, 1e6f, 3.4e38f, inf}) {
    EXPECT_EQ(f32_to_fp8_e4m3(x), 0x7E) << x;
    EXPECT_EQ(f32_to_fp8_e4m3(-x), 0xFE) << x;
  }
  EXPECT_EQ(f32_to_fp8_e4m3(std::numeric_limits<float>::quiet_NaN()), 0x7F);
  EXPECT_EQ(f32_to_fp8_e4m3(-std::numeric_limits<float>::quiet_NaN()), 0xFF);
  EXPECT_EQ(f32_to_fp8_e4m3(std::numeric_limits<float>::signaling_NaN()), 0x7F);
  EXPECT_EQ(f32_to_fp8_e4m3(-0.0f), 0x80);
  EXPECT_EQ(f32_to_fp8_e4m3(std::ldexp(1.0f, -10)), 0x00);   // half the smallest subnormal: tie to even (zero)
  EXPECT_EQ(f32_to_fp8_e4m3(std::nextafter(std::ldexp(1.0f, -10), 1.0f)), 0x01);
  EXPECT_EQ(f32_to_fp8_e4m3(std::numeric_limits<float>::denorm_min()), 0x00);
  EXPECT_EQ(f32_to_fp8_e4m3(-std::numeric_limits<float>::denorm_min()), 0x80);
}

TEST(Fp8, MatchesNearestValueOracleOnRandomInputs) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> mant(1.0f, 2.0f);
  std::uniform_int_distribution<int> expo(-14, 10);   // spans underflow, subnormals, normals and overflow
  for (int i = 0; i < 100000; ++i) {
    const float x = (i & 1 ? -1.0f : 1.0f) * std::ldexp(mant(rng), expo(rng));
    ASSERT_EQ(f32_to_fp8_e4m3(x), nearest_code_by_scan(x)) << x;
  }
}

TEST(Fp8, RoundTripErrorBound) {
  // Normal range: relative error <= 2^-4 (half an ulp of a 3-bit mantissa); subnormal range: absolute <= 2^-10.
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-448.0f, 448.0f);
  std::uniform_real_distribution<float> small(-0.02f, 0.02f);
  for (int i = 0; i < 100000; ++i) {
    const float x = (i % 3 == 0) ? small(rng) : u(rng);
    const float err = std::fabs(fp8_e4m3_to_f32(f32_to_fp8_e4m3(x)) - x);
    if (std::fabs(x) >= std::ldexp(1.0f, -6))
      ASSERT_LE(err, std::ldexp(std::fabs(x), -4)) << x;
    else
      ASSERT_LE(err, std::ldexp(1.0f, -10)) << x;
  }
}

TEST(Fp8, BlockQuantizeScalesAndErrorBound) {
  const int64_t rows = 300, cols = 200;   // not multiples of 128: partial edge blocks
  std::mt19937 rng(3);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> w(rows * cols);   // (rows, cols)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)   // a different magnitude per block, so one scale would not do
      w[r * cols + c] = g(rng) * std::ldexp(1.0f, static_cast<int>((r / 128) * 3 + (c / 128)) - 4);
  for (int64_t r = 256; r < rows; ++r)
    for (int64_t c = 128; c < cols; ++c) w[r * cols + c] = 0.0f;   // an all-zero block
  ASSERT_EQ(fp8_scale_shape(rows, cols), (std::vector<int64_t>{3, 2}));
  std::vector<uint8_t> q(rows * cols);
  std::vector<float> scale_inv(3 * 2), back(rows * cols);
  fp8_block_quantize(w.data(), rows, cols, q.data(), scale_inv.data());
  fp8_block_dequantize(q.data(), scale_inv.data(), rows, cols, back.data());
  EXPECT_EQ(scale_inv[2 * 2 + 1], 1.0f);
  for (int64_t br = 0; br < 3; ++br)
    for (int64_t bc = 0; bc < 2; ++bc) {
      float amax = 0;
      for (int64_t r = br * 128; r < std::min(rows, br * 128 + 128); ++r)
        for (int64_t c = bc * 128; c < std::min(cols, bc * 128 + 128); ++c) amax = std::max(amax, std::fabs(w[r * cols + c]));
      if (amax > 0) {
        EXPECT_FLOAT_EQ(scale_inv[br * 2 + bc], amax / kFp8E4M3Max);
      }
    }
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const int64_t i = r * cols + c;
      const float s = scale_inv[(r / 128) * 2 + c / 128];
      EXPECT_FALSE(is_nan_code(q[i]));
      const float bound = (std::ldexp(std::fabs(w[i]), -4) + std::ldexp(s, -10)) * 1.0001f;
      ASSERT_LE(std::fabs(back[i] - w[i]), bound) << r << "," << c;
      ASSERT_EQ(back[i], fp8_e4m3_to_f32(q[i]) * s);
    }
}
