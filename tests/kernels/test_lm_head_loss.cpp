// Tests of the fused, vocabulary-chunked LM head + cross-entropy: forward against a directly computed log-softmax,
// finite-difference gradients (ignored rows, chunks that do not divide V, dweight += or null), a shape with several
// row blocks and vocabulary chunks against a naive backward, float vs double, bad targets.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "kernels/dense_testing.h"
#include "kernels/gradcheck.h"
#include "ops/loss.h"

using namespace stepwise;
using namespace stepwise::testing;

namespace {

constexpr int32_t kIgnore = -100;

// Direct computation in double: full logits row, max-shifted log-softmax. Returns loss (N) and lse (N).
struct NaiveLoss {
  std::vector<double> loss, lse;
};
NaiveLoss naive_forward(const std::vector<double>& h, const std::vector<double>& w, const std::vector<int32_t>& t,
                        int64_t N, int64_t C, int64_t V) {
  NaiveLoss r{std::vector<double>(N), std::vector<double>(N)};
  std::vector<double> logits(V);
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t v = 0; v < V; ++v) {
      logits[v] = 0;
      for (int64_t c = 0; c < C; ++c) logits[v] += h[n * C + c] * w[v * C + c];
    }
    const double mx = *std::max_element(logits.begin(), logits.end());
    double s = 0;
    for (double l : logits) s += std::exp(l - mx);
    r.lse[n] = mx + std::log(s);
    r.loss[n] = t[n] == kIgnore ? 0.0 : r.lse[n] - logits[t[n]];
  }
  return r;
}

// Targets in [0, V) with every `every`-th row ignored.
std::vector<int32_t> targets_with_ignored(int64_t N, int64_t V, uint64_t seed, int64_t every) {
  auto t = random_ids(N, seed, 0, static_cast<int32_t>(V - 1));
  for (int64_t n = 0; n < N; n += every) t[n] = kIgnore;
  return t;
}

}  // namespace

TEST(LmHeadLoss, ForwardMatchesDirectLogSoftmax) {
  const int64_t N = 6, C = 5, V = 11;
  const auto h = random_vector<double>(N * C, 60, -2, 2), w = random_vector<double>(V * C, 61, -2, 2);
  const auto t = targets_with_ignored(N, V, 62, 4);
  const auto ref = naive_forward(h, w, t, N, C, V);
  for (int64_t chunk : {1, 3, 4, 11, 4096}) {
    std::vector<double> loss(N, -1), lse(N, -1);
    cpu::lm_head_loss_forward<double>({.loss = loss.data(), .lse = lse.data(), .h = h.data(), .weight = w.data(),
                                       .targets = t.data(), .N = N, .C = C, .V = V, .chunk = chunk});
    for (int64_t n = 0; n < N; ++n) {
      EXPECT_NEAR(lse[n], ref.lse[n], 1e-12) << "chunk " << chunk << " row " << n;
      EXPECT_NEAR(loss[n], ref.loss[n], 1e-12) << "chunk " << chunk << " row " << n;
    }
    EXPECT_EQ(loss[0], 0.0) << "ignored row";
  }
}

class LmHeadGrad : public ::testing::TestWithParam<std::pair<int64_t, bool>> {};  // (chunk, want dweight)

TEST_P(LmHeadGrad, MatchesFiniteDifference) {
  const auto [chunk, want_dweight] = GetParam();
  const int64_t N = 7, C = 5, V = 11;
  auto h = random_vector<double>(N * C, 63), w = random_vector<double>(V * C, 64);
  const auto t = targets_with_ignored(N, V, 65, 3);  // rows 0, 3, 6 ignored
  const auto dloss = random_vector<double>(N, 66, 0.1, 1.0);
  std::vector<double> loss(N), lse(N);
  LmHeadLossParams<double> p{.loss = loss.data(), .lse = lse.data(), .h = h.data(), .weight = w.data(),
                             .targets = t.data(), .dloss = dloss.data(), .N = N, .C = C, .V = V, .chunk = chunk};
  auto objective = [&] {  // sum_n dloss[n] * loss[n]
    cpu::lm_head_loss_forward(p);
    return dot(loss, dloss);
  };
  objective();
  std::vector<double> dh(N * C, 5.0);  // prefilled: backward must overwrite
  const auto dw_before = random_vector<double>(V * C, 67);
  std::vector<double> dw = dw_before;
  p.dh = dh.data();
  p.dweight = want_dweight ? dw.data() : nullptr;
  cpu::lm_head_loss_backward(p);
  expect_gradient(objective, h, dh, "lm head dh");
  for (int64_t c = 0; c < C; ++c) EXPECT_EQ(dh[3 * C + c], 0.0) << "ignored row 3 has no gradient";
  if (want_dweight)
    expect_gradient(objective, w, minus(dw, dw_before), "lm head dweight");
  else
    EXPECT_EQ(dw, dw_before);
}
INSTANTIATE_TEST_SUITE_P(Chunks, LmHeadGrad,
                         ::testing::Values(std::pair<int64_t, bool>{4, true}, std::pair<int64_t, bool>{1, true},
                                           std::pair<int64_t, bool>{11, true}, std::pair<int64_t, bool>{4096, true},
                                           std::pair<int64_t, bool>{3, false}));

// N * chunk exceeds the kernel's logits buffer, so rows come in two blocks and V in two chunks (the last 4 wide).
TEST(LmHeadLoss, ManyRowBlocksMatchNaiveForwardAndBackward) {
  const int64_t N = 1030, C = 3, V = 4100, chunk = 4096;
  const auto h = random_vector<double>(N * C, 68, -2, 2), w = random_vector<double>(V * C, 69, -2, 2);
  const auto t = targets_with_ignored(N, V, 70, 7);
  const auto dloss = random_vector<double>(N, 71);
  std::vector<double> loss(N), lse(N), dh(N * C), dw(V * C, 0.0);
  LmHeadLossParams<double> p{.loss = loss.data(), .lse = lse.data(), .h = h.data(), .weight = w.data(),
                             .targets = t.data(), .dh = dh.data(), .dweight = dw.data(), .dloss = dloss.data(),
                             .N = N, .C = C, .V = V, .chunk = chunk};
  cpu::lm_head_loss_forward(p);
  cpu::lm_head_loss_backward(p);
  const auto ref = naive_forward(h, w, t, N, C, V);
  EXPECT_LT(normalised_error(loss, ref.loss), 1e-13);
  EXPECT_LT(normalised_error(lse, ref.lse), 1e-13);
  // naive gradient: dz = dloss (softmax - onehot); dh = dz W; dW += dz^T h
  std::vector<double> dh_ref(N * C, 0.0), dw_ref(V * C, 0.0);
  for (int64_t n = 0; n < N; ++n) {
    if (t[n] == kIgnore) continue;
    for (int64_t v = 0; v < V; ++v) {
      double z = 0;
      for (int64_t c = 0; c < C; ++c) z += h[n * C + c] * w[v * C + c];
      const double dz = dloss[n] * (std::exp(z - ref.lse[n]) - (v == t[n] ? 1.0 : 0.0));
      for (int64_t c = 0; c < C; ++c) {
        dh_ref[n * C + c] += dz * w[v * C + c];
        dw_ref[v * C + c] += dz * h[n * C + c];
      }
    }
  }
  EXPECT_LT(normalised_error(dh, dh_ref), 1e-12);
  EXPECT_LT(normalised_error(dw, dw_ref), 1e-12);
}

TEST(LmHeadLoss, FloatAgreesWithDouble) {
  const int64_t N = 40, C = 64, V = 1000, chunk = 300;
  const auto h = random_vector<double>(N * C, 72), w = random_vector<double>(V * C, 73, -0.3, 0.3);
  const auto t = targets_with_ignored(N, V, 74, 5);
  const auto dloss = random_vector<double>(N, 75, 0.0, 1.0 / N);
  auto run = [&]<class T>(T) {
    std::vector<T> ht = cast_vector<T>(h), wt = cast_vector<T>(w), dl = cast_vector<T>(dloss);
    std::vector<T> loss(N), lse(N), dh(N * C), dw(V * C, T(0));
    LmHeadLossParams<T> p{.loss = loss.data(), .lse = lse.data(), .h = ht.data(), .weight = wt.data(),
                          .targets = t.data(), .dh = dh.data(), .dweight = dw.data(), .dloss = dl.data(),
                          .N = N, .C = C, .V = V, .chunk = chunk};
    cpu::lm_head_loss_forward(p);
    cpu::lm_head_loss_backward(p);
    return std::vector{cast_vector<double>(loss), cast_vector<double>(lse), cast_vector<double>(dh),
                       cast_vector<double>(dw)};
  };
  const auto f = run(float{}), d = run(double{});
  EXPECT_LT(normalised_error(f[0], d[0]), 1e-5) << "loss";
  EXPECT_LT(normalised_error(f[1], d[1]), 1e-5) << "lse";
  EXPECT_LT(normalised_error(f[2], d[2]), 1e-5) << "dh";
  EXPECT_LT(normalised_error(f[3], d[3]), 1e-5) << "dweight";
}

TEST(LmHeadLoss, RejectsTargetOutsideTheVocabulary) {
  std::vector<float> h(2), w(3 * 2), loss(1), lse(1);
  const std::vector<int32_t> t = {3};
  EXPECT_THROW(cpu::lm_head_loss_forward<float>({.loss = loss.data(), .lse = lse.data(), .h = h.data(),
                                                 .weight = w.data(), .targets = t.data(), .N = 1, .C = 2, .V = 3}),
               std::invalid_argument);
}
