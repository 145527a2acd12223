// Tests of the optimizer ops: AdamW against hand-computed steps (first step moves by lr * sign(g), decoupled decay,
// bias correction at a later step), sum_squares in double over several blocks, scale_inplace, all_finite.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "ops/optim.h"

using namespace stepwise;

TEST(AdamW, FirstStepMovesByLrTimesSignPlusDecay) {
  // step 1 from zero moments: m/(1-b1) = g and sqrt(v/(1-b2)) = |g|, so the update is g/(|g| + eps) + wd * p.
  std::vector<float> param = {1.0f, -2.0f, 0.5f}, m(3, 0.0f), v(3, 0.0f);
  const std::vector<float> grad = {0.5f, 3.0f, -0.25f};
  cpu::adamw_update({.param = param.data(), .m = m.data(), .v = v.data(), .grad = grad.data(), .n = 3, .step = 1,
                     .lr = 0.1f, .beta1 = 0.9f, .beta2 = 0.95f, .eps = 1e-8f, .weight_decay = 0.01f});
  EXPECT_NEAR(param[0], 1.0 - 0.1 * (1.0 + 0.01 * 1.0), 1e-6);   // 0.899
  EXPECT_NEAR(param[1], -2.0 - 0.1 * (1.0 - 0.01 * 2.0), 1e-6);  // -2.098
  EXPECT_NEAR(param[2], 0.5 - 0.1 * (-1.0 + 0.01 * 0.5), 1e-6);  // 0.5995
  EXPECT_NEAR(m[0], 0.05, 1e-7);        // (1 - 0.9) * 0.5
  EXPECT_NEAR(v[1], 0.05 * 9.0, 1e-6);  // (1 - 0.95) * 3^2
}

TEST(AdamW, LaterStepAppliesBiasCorrection) {
  // step 3, m = 0.2, v = 0.04, g = -0.1, b1 = 0.9, b2 = 0.99, lr = 1e-3, wd = 0.1, p = 2:
  //   m' = 0.18 - 0.01 = 0.17;  v' = 0.0396 + 0.0001 = 0.0397
  //   mhat = 0.17 / (1 - 0.729) = 0.627306...;  vhat = 0.0397 / (1 - 0.970299) = 1.336655...
  //   p' = 2 - 1e-3 * (0.627306 / (1.156138 + 1e-8) + 0.2) = 2 - 1e-3 * 0.742588 = 1.999257412
  float param = 2.0f, m = 0.2f, v = 0.04f;
  const float grad = -0.1f;
  cpu::adamw_update({.param = &param, .m = &m, .v = &v, .grad = &grad, .n = 1, .step = 3, .lr = 1e-3f,
                     .beta1 = 0.9f, .beta2 = 0.99f, .eps = 1e-8f, .weight_decay = 0.1f});
  EXPECT_NEAR(m, 0.17, 1e-7);
  EXPECT_NEAR(v, 0.0397, 1e-7);
  EXPECT_NEAR(param, 1.999257412, 2.4e-7);  // float spacing near 2 is 2.4e-7
}

TEST(AdamW, RejectsStepZero) {
  float p = 0, m = 0, v = 0, g = 0;
  EXPECT_THROW(cpu::adamw_update({.param = &p, .m = &m, .v = &v, .grad = &g, .n = 1, .step = 0}), std::invalid_argument);
}

TEST(SumSquares, AccumulatesInDoubleOverManyBlocks) {
  const int64_t n = 300001;  // several 65536-element blocks plus a ragged end
  std::vector<float> x(n);
  double expected = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = static_cast<float>(i % 7) - 3.0f + 1.0f / 1024;  // exactly representable; squares exact in double
    expected += static_cast<double>(x[i]) * x[i];
  }
  // every partial sum fits in 53 bits, so double accumulation is exact (a float accumulator could not be)
  EXPECT_EQ(cpu::sum_squares(x.data(), n), expected);
  EXPECT_EQ(cpu::sum_squares(x.data(), 0), 0.0);
}

TEST(ScaleInplace, MultipliesEveryElement) {
  std::vector<float> x = {1.0f, -2.0f, 0.5f, 8.0f};
  cpu::scale_inplace(x.data(), 4, 0.25f);
  EXPECT_EQ(x, (std::vector<float>{0.25f, -0.5f, 0.125f, 2.0f}));
}

TEST(AllFinite, FindsNanAndInfAnywhere) {
  std::vector<float> x(100000, 1.0f);
  EXPECT_TRUE(cpu::all_finite(x.data(), static_cast<int64_t>(x.size())));
  x[99999] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(cpu::all_finite(x.data(), static_cast<int64_t>(x.size())));
  x[99999] = 1.0f;
  x[3] = -std::numeric_limits<float>::infinity();
  EXPECT_FALSE(cpu::all_finite(x.data(), static_cast<int64_t>(x.size())));
  EXPECT_TRUE(cpu::all_finite(x.data() + 4, static_cast<int64_t>(x.size()) - 4));
}
