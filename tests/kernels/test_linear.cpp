// Tests of the CPU linear layer (BLAS): forward against a naive triple loop, finite-difference gradients with both
// dinp modes and null gradient pointers, float vs double, and the gemm helper's transposes.
#include <gtest/gtest.h>

#include "cpu/gemm.h"
#include "kernels/dense_testing.h"
#include "kernels/gradcheck.h"
#include "ops/dense.h"

using namespace stepwise;
using namespace stepwise::testing;

TEST(Linear, ForwardMatchesNaiveProduct) {
  const int64_t N = 5, I = 4, O = 3;
  const auto inp = random_vector<double>(N * I, 30), weight = random_vector<double>(O * I, 31);
  std::vector<double> out(N * O);
  cpu::linear_forward<double>({.out = out.data(), .inp = inp.data(), .weight = weight.data(), .N = N, .I = I, .O = O});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o) {
      double s = 0;
      for (int64_t i = 0; i < I; ++i) s += inp[n * I + i] * weight[o * I + i];
      EXPECT_NEAR(out[n * O + o], s, 1e-14);
    }
}

struct LinearGradCase {
  bool accumulate_dinp, want_dinp, want_dweight;
};
class LinearGrad : public ::testing::TestWithParam<LinearGradCase> {};

TEST_P(LinearGrad, MatchesFiniteDifference) {
  const auto c = GetParam();
  const int64_t N = 5, I = 4, O = 3;
  auto inp = random_vector<double>(N * I, 32), weight = random_vector<double>(O * I, 33);
  const auto g = random_vector<double>(N * O, 34);
  std::vector<double> out(N * O);
  LinearParams<double> p{.out = out.data(), .inp = inp.data(), .weight = weight.data(), .N = N, .I = I, .O = O};
  auto loss = [&] {
    cpu::linear_forward(p);
    return dot(out, g);
  };
  const auto dinp_before = random_vector<double>(N * I, 35), dweight_before = random_vector<double>(O * I, 36);
  std::vector<double> dinp = dinp_before, dweight = dweight_before;
  p.dinp = c.want_dinp ? dinp.data() : nullptr;
  p.dweight = c.want_dweight ? dweight.data() : nullptr;
  p.dout = g.data();
  p.accumulate_dinp = c.accumulate_dinp;
  cpu::linear_backward(p);
  if (c.want_dinp)
    expect_gradient(loss, inp, c.accumulate_dinp ? minus(dinp, dinp_before) : dinp, "linear dinp");
  else
    EXPECT_EQ(dinp, dinp_before);
  if (c.want_dweight)
    expect_gradient(loss, weight, minus(dweight, dweight_before), "linear dweight");
  else
    EXPECT_EQ(dweight, dweight_before);
}
INSTANTIATE_TEST_SUITE_P(Modes, LinearGrad,
                         ::testing::Values(LinearGradCase{false, true, true}, LinearGradCase{true, true, true},
                                           LinearGradCase{false, true, false}, LinearGradCase{false, false, true},
                                           LinearGradCase{true, true, false}));

TEST(Linear, FloatAgreesWithDouble) {
  const int64_t N = 33, I = 70, O = 45;
  const auto inp = random_vector<double>(N * I, 37), weight = random_vector<double>(O * I, 38);
  const auto g = random_vector<double>(N * O, 39);
  auto run = [&]<class T>(T) {
    std::vector<T> x = cast_vector<T>(inp), w = cast_vector<T>(weight), gt = cast_vector<T>(g);
    std::vector<T> out(N * O), dinp(N * I), dweight(O * I, T(0));
    LinearParams<T> p{.out = out.data(), .inp = x.data(), .weight = w.data(), .dinp = dinp.data(),
                      .dweight = dweight.data(), .dout = gt.data(), .N = N, .I = I, .O = O};
    cpu::linear_forward(p);
    cpu::linear_backward(p);
    return std::vector{cast_vector<double>(out), cast_vector<double>(dinp), cast_vector<double>(dweight)};
  };
  const auto f = run(float{}), d = run(double{});
  EXPECT_LT(normalised_error(f[0], d[0]), 1e-5) << "out";
  EXPECT_LT(normalised_error(f[1], d[1]), 1e-5) << "dinp";
  EXPECT_LT(normalised_error(f[2], d[2]), 1e-5) << "dweight";
}

TEST(Gemm, AllTransposeCombinationsMatchNaive) {
  const int64_t M = 3, N = 4, K = 5;
  const auto a = random_vector<double>(M * K, 40), b = random_vector<double>(K * N, 41), c0 = random_vector<double>(M * N, 42);
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      // A stored (M, K) or, transposed, (K, M); B stored (K, N) or (N, K).
      std::vector<double> as(M * K), bs(K * N), c = c0;
      for (int64_t m = 0; m < M; ++m)
        for (int64_t k = 0; k < K; ++k) (ta ? as[k * M + m] : as[m * K + k]) = a[m * K + k];
      for (int64_t k = 0; k < K; ++k)
        for (int64_t n = 0; n < N; ++n) (tb ? bs[n * K + k] : bs[k * N + n]) = b[k * N + n];
      cpu::gemm<double>(ta, tb, M, N, K, 2.0, as.data(), ta ? M : K, bs.data(), tb ? K : N, 0.5, c.data(), N);
      for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) {
          double s = 0;
          for (int64_t k = 0; k < K; ++k) s += a[m * K + k] * b[k * N + n];
          EXPECT_NEAR(c[m * N + n], 2.0 * s + 0.5 * c0[m * N + n], 1e-13) << ta << tb;
        }
    }
}
