// Tests of dtype tables and bf16 rounding.
#include <gtest/gtest.h>

#include <cmath>

#include "core/dtype.h"

using namespace stepwise;

TEST(DType, NamesRoundTrip) {
  for (DType t : {DType::f32, DType::bf16, DType::f8_e4m3, DType::i32, DType::u16}) {
    DType back;
    ASSERT_TRUE(dtype_from_name(dtype_name(t), &back));
    EXPECT_EQ(back, t);
  }
  DType dummy;
  EXPECT_FALSE(dtype_from_name("F33", &dummy));
  EXPECT_EQ(dtype_size(DType::bf16), 2u);
  EXPECT_EQ(dtype_size(DType::f64), 8u);
}

TEST(DType, Bf16RoundsToNearestEven) {
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(1.0f)), 1.0f);
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(-2.5f)), -2.5f);
  float x = 1.0f + 1.0f / 256;  // exactly halfway between two bf16 values: rounds to even (1.0)
  EXPECT_EQ(bf16_to_f32(f32_to_bf16(x)), 1.0f);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(std::nanf("")))));
  EXPECT_NEAR(bf16_to_f32(f32_to_bf16(3.14159f)), 3.14159f, 0.01f);
}
