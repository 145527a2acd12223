// Tests of the CPU SwiGLU gate: forward against silu(g) * u (saturated gates included), finite-difference gradients
// of gate and up, float vs double.
#include <gtest/gtest.h>

#include <cmath>

#include "kernels/dense_testing.h"
#include "kernels/gradcheck.h"
#include "ops/dense.h"

using namespace stepwise;
using namespace stepwise::testing;

TEST(Swiglu, ForwardMatchesFormula) {
  const int64_t N = 2, F = 4;
  const std::vector<double> gate = {-50, -1.5, 0, 0.3, 2, 40, -0.7, 800};
  const auto up = random_vector<double>(N * F, 50);
  std::vector<double> out(N * F);
  cpu::swiglu_forward<double>({.out = out.data(), .gate = gate.data(), .up = up.data(), .N = N, .F = F});
  for (int64_t k = 0; k < N * F; ++k) {
    const double expected = gate[k] / (1 + std::exp(-gate[k])) * up[k];
    EXPECT_NEAR(out[k], expected, 1e-12 * std::max(1.0, std::abs(expected))) << k;
  }
}

TEST(Swiglu, BackwardMatchesFiniteDifference) {
  const int64_t N = 3, F = 5;
  auto gate = random_vector<double>(N * F, 51, -4, 4), up = random_vector<double>(N * F, 52);
  const auto g = random_vector<double>(N * F, 53);
  std::vector<double> out(N * F), dgate(N * F, 9.0), dup(N * F, 9.0);  // prefilled: backward must overwrite
  SwigluParams<double> p{.out = out.data(), .gate = gate.data(), .up = up.data(), .dgate = dgate.data(),
                         .dup = dup.data(), .dout = g.data(), .N = N, .F = F};
  auto loss = [&] {
    cpu::swiglu_forward(p);
    return dot(out, g);
  };
  cpu::swiglu_backward(p);
  expect_gradient(loss, gate, dgate, "swiglu dgate");
  expect_gradient(loss, up, dup, "swiglu dup");
}

TEST(Swiglu, FloatAgreesWithDouble) {
  const int64_t N = 64, F = 200;
  const auto gate = random_vector<double>(N * F, 54, -6, 6), up = random_vector<double>(N * F, 55);
  const auto g = random_vector<double>(N * F, 56);
  auto run = [&]<class T>(T) {
    std::vector<T> gt = cast_vector<T>(gate), ut = cast_vector<T>(up), dy = cast_vector<T>(g);
    std::vector<T> out(N * F), dgate(N * F), dup(N * F);
    SwigluParams<T> p{.out = out.data(), .gate = gt.data(), .up = ut.data(), .dgate = dgate.data(),
                      .dup = dup.data(), .dout = dy.data(), .N = N, .F = F};
    cpu::swiglu_forward(p);
    cpu::swiglu_backward(p);
    return std::vector{cast_vector<double>(out), cast_vector<double>(dgate), cast_vector<double>(dup)};
  };
  const auto f = run(float{}), d = run(double{});
  EXPECT_LT(normalised_error(f[0], d[0]), 1e-5) << "out";
  EXPECT_LT(normalised_error(f[1], d[1]), 1e-5) << "dgate";
  EXPECT_LT(normalised_error(f[2], d[2]), 1e-5) << "dup";
}

TEST(AddInplace, AddsElementwise) {
  auto y = random_vector<double>(1000, 57);
  const auto x = random_vector<double>(1000, 58), y0 = y;
  cpu::add_inplace(y.data(), x.data(), static_cast<int64_t>(y.size()));
  for (size_t i = 0; i < y.size(); ++i) EXPECT_EQ(y[i], y0[i] + x[i]);
}
