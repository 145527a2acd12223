// Tests of the CPU RMSNorm: forward against the formula, finite-difference gradients (both dinp modes, dweight +=),
// float vs double.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/dense_testing.h"
#include "kernels/gradcheck.h"
#include "ops/dense.h"

using namespace stepwise;
using namespace stepwise::testing;

TEST(RmsNorm, ForwardMatchesFormula) {
  const int64_t N = 3, C = 7;
  const double eps = 1e-5;
  auto inp = random_vector<double>(N * C, 10), weight = random_vector<double>(C, 11, 0.5, 1.5);
  std::vector<double> out(N * C), rstd(N);
  cpu::rmsnorm_forward<double>({.out = out.data(), .rstd = rstd.data(), .inp = inp.data(), .weight = weight.data(),
                                .N = N, .C = C, .eps = eps});
  for (int64_t n = 0; n < N; ++n) {
    double ms = 0;
    for (int64_t c = 0; c < C; ++c) ms += inp[n * C + c] * inp[n * C + c] / C;
    const double r = 1 / std::sqrt(ms + eps);
    EXPECT_NEAR(rstd[n], r, 1e-14);
    for (int64_t c = 0; c < C; ++c) EXPECT_NEAR(out[n * C + c], inp[n * C + c] * r * weight[c], 1e-14);
  }
}

class RmsNormGrad : public ::testing::TestWithParam<bool> {};  // param: accumulate_dinp

TEST_P(RmsNormGrad, MatchesFiniteDifference) {
  const bool accumulate = GetParam();
  const int64_t N = 4, C = 70;  // C > 64 covers two dweight column blocks
  auto inp = random_vector<double>(N * C, 12), weight = random_vector<double>(C, 13, 0.5, 1.5);
  const auto g = random_vector<double>(N * C, 14);
  std::vector<double> out(N * C), rstd(N);
  RmsNormParams<double> p{.out = out.data(), .rstd = rstd.data(), .inp = inp.data(), .weight = weight.data(), .N = N,
                          .C = C, .eps = 1e-3};
  auto loss = [&] {
    cpu::rmsnorm_forward(p);
    return dot(out, g);
  };
  loss();
  const auto dinp_before = random_vector<double>(N * C, 15), dweight_before = random_vector<double>(C, 16);
  std::vector<double> dinp = dinp_before, dweight = dweight_before;
  p.dinp = dinp.data();
  p.dweight = dweight.data();
  p.dout = g.data();
  p.accumulate_dinp = accumulate;
  cpu::rmsnorm_backward(p);
  expect_gradient(loss, inp, accumulate ? minus(dinp, dinp_before) : dinp, "rmsnorm dinp");
  expect_gradient(loss, weight, minus(dweight, dweight_before), "rmsnorm dweight");
}
INSTANTIATE_TEST_SUITE_P(DinpMode, RmsNormGrad, ::testing::Values(false, true));

TEST(RmsNorm, FloatAgreesWithDouble) {
  const int64_t N = 64, C = 384;
  const auto inp = random_vector<double>(N * C, 17, -3, 3), weight = random_vector<double>(C, 18, 0.5, 1.5);
  const auto g = random_vector<double>(N * C, 19);
  auto run = [&]<class T>(T) {
    std::vector<T> x = cast_vector<T>(inp), w = cast_vector<T>(weight), gt = cast_vector<T>(g);
    std::vector<T> out(N * C), rstd(N), dinp(N * C), dweight(C, T(0));
    RmsNormParams<T> p{.out = out.data(), .rstd = rstd.data(), .inp = x.data(), .weight = w.data(),
                       .dinp = dinp.data(), .dweight = dweight.data(), .dout = gt.data(), .N = N, .C = C};
    cpu::rmsnorm_forward(p);
    cpu::rmsnorm_backward(p);
    return std::vector{cast_vector<double>(out), cast_vector<double>(dinp), cast_vector<double>(dweight)};
  };
  const auto f = run(float{}), d = run(double{});
  EXPECT_LT(normalised_error(f[0], d[0]), 1e-5) << "out";
  EXPECT_LT(normalised_error(f[1], d[1]), 1e-5) << "dinp";
  EXPECT_LT(normalised_error(f[2], d[2]), 1e-5) << "dweight";
}
