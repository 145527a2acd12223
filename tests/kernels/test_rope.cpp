// Tests of the CPU rotary embedding: forward against explicit cos/sin of the NeoX pairing, backward as the inverse
// rotation (finite difference and round trip), float vs double at Step-3 positions and theta, bad head_dim.
#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

#include "kernels/dense_testing.h"
#include "kernels/gradcheck.h"
#include "ops/dense.h"

using namespace stepwise;
using namespace stepwise::testing;

TEST(Rope, ForwardMatchesExplicitRotation) {
  const int64_t N = 3, H = 2, D = 8;
  const double theta = 10000.0;
  const std::vector<int32_t> pos = {0, 5, 1000};
  const auto x0 = random_vector<double>(N * H * D, 20);
  std::vector<double> x = x0;
  cpu::rope_forward<double>({.x = x.data(), .pos = pos.data(), .N = N, .H = H, .D = D, .theta = theta});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < D / 2; ++i) {
        const double angle = pos[n] / std::pow(theta, 2.0 * i / D);
        const int64_t a = (n * H + h) * D + i, b = a + D / 2;  // pair (i, i + D/2)
        EXPECT_NEAR(x[a], x0[a] * std::cos(angle) - x0[b] * std::sin(angle), 1e-13);
        EXPECT_NEAR(x[b], x0[b] * std::cos(angle) + x0[a] * std::sin(angle), 1e-13);
      }
  for (int64_t k = 0; k < H * D; ++k) EXPECT_EQ(x[k], x0[k]) << "position 0 is the identity";
}

TEST(Rope, BackwardMatchesFiniteDifference) {
  const int64_t N = 4, H = 3, D = 6;
  const std::vector<int32_t> pos = {0, 1, 17, 65535};
  auto x = random_vector<double>(N * H * D, 21);
  const auto g = random_vector<double>(N * H * D, 22);
  RopeParams<double> p{.pos = pos.data(), .N = N, .H = H, .D = D};
  auto loss = [&] {
    std::vector<double> y = x;
    p.x = y.data();
    cpu::rope_forward(p);
    return dot(y, g);
  };
  std::vector<double> dx = g;
  p.x = dx.data();
  cpu::rope_backward(p);
  expect_gradient(loss, x, dx, "rope dx");
}

TEST(Rope, BackwardUndoesForward) {
  const int64_t N = 5, H = 4, D = 16;
  const auto pos = random_ids(N, 23, 0, 65535);
  const auto x0 = random_vector<double>(N * H * D, 24);
  std::vector<double> x = x0;
  RopeParams<double> p{.x = x.data(), .pos = pos.data(), .N = N, .H = H, .D = D};
  cpu::rope_forward(p);
  cpu::rope_backward(p);
  for (size_t k = 0; k < x.size(); ++k) EXPECT_NEAR(x[k], x0[k], 1e-12);
}

TEST(Rope, FloatAgreesWithDouble) {
  const int64_t N = 128, H = 4, D = 64;
  const auto pos = random_ids(N, 25, 0, 65535);
  const auto x0 = random_vector<double>(N * H * D, 26);
  auto run = [&]<class T>(T) {
    std::vector<T> x = cast_vector<T>(x0);
    cpu::rope_forward<T>({.x = x.data(), .pos = pos.data(), .N = N, .H = H, .D = D});
    return cast_vector<double>(x);
  };
  EXPECT_LT(normalised_error(run(float{}), run(double{})), 1e-5);
}

TEST(Rope, RejectsOddHeadDim) {
  std::vector<float> x(6);
  const std::vector<int32_t> pos = {0, 1};
  EXPECT_THROW(cpu::rope_forward<float>({.x = x.data(), .pos = pos.data(), .N = 2, .H = 1, .D = 3}),
               std::invalid_argument);
}
