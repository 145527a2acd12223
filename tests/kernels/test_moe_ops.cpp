// Tests of the CPU MoE ops: router (softmax, top-k with ties and selection bias, renormalisation, load, aux loss and
// their finite-difference gradients), route plan invariants, permute / combine / grouped linear gradients, float vs
// double agreement, and argument errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <vector>

#include "kernels/gradcheck.h"
#include "ops/moe.h"

namespace stepwise {
namespace {

using testing::random_vector;

template <class T>
struct RouterRun {
  int64_t N, E, K;
  std::vector<T> logits, probs, weights, load, dlogits, dweights;
  std::vector<int32_t> idx;
  std::vector<float> bias;
  T aux = 0;
  bool renormalize = false;
  double aux_coef = 0;

  RouterRun(int64_t n, int64_t e, int64_t k, uint64_t seed) : N(n), E(e), K(k) {
    logits = random_vector<T>(N * E, seed, -2, 2);
    dweights = random_vector<T>(N * K, seed + 1);
    probs.resize(N * E), dlogits.resize(N * E), weights.resize(N * K), idx.resize(N * K), load.resize(E);
  }
  RouterParams<T> params() {
    RouterParams<T> p;
    p.probs = probs.data(), p.idx = idx.data(), p.weights = weights.data(), p.load = load.data();
    p.aux_loss = &aux, p.logits = logits.data(), p.bias = bias.empty() ? nullptr : bias.data();
    p.dlogits = dlogits.data(), p.dweights = dweights.data();
    p.N = N, p.E = E, p.K = K, p.renormalize = renormalize, p.aux_coef = aux_coef;
    return p;
  }
  void forward() { cpu::router_forward(params()); }
  void backward() { cpu::router_backward(params()); }
};

TEST(Router, SoftmaxTopKAndLoad) {
  RouterRun<double> r(40, 6, 2, 3);
  r.forward();
  std::vector<int64_t> counts(r.E, 0);
  for (int64_t n = 0; n < r.N; ++n) {
    double mx = *std::max_element(&r.logits[n * r.E], &r.logits[(n + 1) * r.E]), sum = 0;
    for (int64_t e = 0; e < r.E; ++e) sum += std::exp(r.logits[n * r.E + e] - mx);
    std::vector<int32_t> order(r.E);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int32_t a, int32_t b) { return r.logits[n * r.E + a] > r.logits[n * r.E + b]; });
    for (int64_t e = 0; e < r.E; ++e)
      EXPECT_NEAR(r.probs[n * r.E + e], std::exp(r.logits[n * r.E + e] - mx) / sum, 1e-15);
    for (int64_t k = 0; k < r.K; ++k) {
      EXPECT_EQ(r.idx[n * r.K + k], order[k]);
      EXPECT_EQ(r.weights[n * r.K + k], r.probs[n * r.E + order[k]]);
      ++counts[order[k]];
    }
  }
  for (int64_t e = 0; e < r.E; ++e) EXPECT_DOUBLE_EQ(r.load[e], counts[e] / double(r.N * r.K));
  EXPECT_EQ(r.aux, 0.0);
}

TEST(Router, TiesGoToTheLowerExpertId) {
  RouterRun<float> r(2, 5, 3, 1);
  r.logits = {0.5f, 1.0f, 1.0f, 0.5f, 1.0f, /**/ 0, 0, 0, 0, 0};
  r.forward();
  EXPECT_EQ(std::vector<int32_t>(r.idx.begin(), r.idx.begin() + 3), (std::vector<int32_t>{1, 2, 4}));
  EXPECT_EQ(std::vector<int32_t>(r.idx.begin() + 3, r.idx.end()), (std::vector<int32_t>{0, 1, 2}));
}

TEST(Router, BiasSteersSelectionOnly) {
  RouterRun<double> r(1, 4, 2, 1);
  r.logits = {2.0, 1.0, 0.0, -1.0};
  r.bias = {0.0f, 0.0f, 0.0f, 1.0f};  // expert 3 has the lowest prob but the highest prob + bias
  r.forward();
  EXPECT_EQ(r.idx[0], 3);
  EXPECT_EQ(r.idx[1], 0);
  EXPECT_EQ(r.weights[0], r.probs[3]);  // weights stay unbiased probabilities
  EXPECT_EQ(r.weights[1], r.probs[0]);
}

TEST(Router, RenormalizedWeightsSumToOne) {
  RouterRun<double> r(30, 8, 3, 5);
  r.renormalize = true;
  r.forward();
  for (int64_t n = 0; n < r.N; ++n) {
    double s = 0;
    for (int64_t k = 0; k < r.K; ++k) s += r.weights[n * r.K + k];
    EXPECT_NEAR(s, 1.0, 1e-15);
    EXPECT_NEAR(r.weights[n * r.K] / r.weights[n * r.K + 1], r.probs[n * r.E + r.idx[n * r.K]] /
                                                                 r.probs[n * r.E + r.idx[n * r.K + 1]], 1e-12);
  }
}

TEST(Router, AuxLossValue) {
  RouterRun<double> r(25, 5, 2, 9);
  r.aux_coef = 0.01;
  r.forward();
  double expected = 0;
  for (int64_t e = 0; e < r.E; ++e) {
    double f = 0, P = 0;
    for (int64_t a = 0; a < r.N * r.K; ++a) f += r.idx[a] == e;
    for (int64_t n = 0; n < r.N; ++n) P += r.probs[n * r.E + e];
    expected += (f / (r.N * r.K)) * (P / r.N);
  }
  EXPECT_NEAR(r.aux, 0.01 * r.E * expected, 1e-15);
  EXPECT_GT(r.aux, 0.0);
}

// L = sum(weights * dweights) + aux; top-k selection is locally constant for distinct random logits.
void expect_router_gradient(bool renormalize, double aux_coef, bool with_bias) {
  RouterRun<double> r(20, 7, 3, 13);
  r.renormalize = renormalize, r.aux_coef = aux_coef;
  if (with_bias) r.bias = random_vector<float>(r.E, 99, -0.1, 0.1);
  r.forward();
  r.backward();
  const std::vector<double> analytic = r.dlogits;
  const std::vector<int32_t> idx0 = r.idx;
  auto loss = [&] {
    r.forward();
    EXPECT_EQ(r.idx, idx0) << "selection changed under the finite-difference step";
    return testing::dot(r.weights, r.dweights) + r.aux;
  };
  testing::expect_gradient(loss, r.logits, analytic, "router dlogits", 1e-7);
}

TEST(Router, GradientPlain) { expect_router_gradient(false, 0, false); }
TEST(Router, GradientRenormalized) { expect_router_gradient(true, 0, false); }
TEST(Router, GradientWithAuxLoss) { expect_router_gradient(false, 0.05, false); }
TEST(Router, GradientRenormalizedAuxBias) { expect_router_gradient(true, 0.05, true); }

TEST(Router, FloatAgreesWithDouble) {
  RouterRun<float> f(50, 8, 2, 17);
  RouterRun<double> d(50, 8, 2, 17);
  for (auto* run : {&f.renormalize, &d.renormalize}) *run = true;
  f.aux_coef = d.aux_coef = 0.02;
  f.forward(), f.backward(), d.forward(), d.backward();
  EXPECT_EQ(f.idx, d.idx);
  for (size_t i = 0; i < d.weights.size(); ++i) EXPECT_NEAR(f.weights[i], d.weights[i], 1e-6);
  for (size_t i = 0; i < d.dlogits.size(); ++i) EXPECT_NEAR(f.dlogits[i], d.dlogits[i], 1e-6);
  EXPECT_NEAR(f.aux, d.aux, 1e-7);
}

TEST(Router, RejectsKAboveE) {
  RouterRun<float> r(2, 3, 3, 1);
  auto p = r.params();
  p.K = 4;
  EXPECT_THROW(cpu::router_forward(p), std::invalid_argument);
}

// A routing plan with its storage; expert 3 of E = 6 gets no tokens.
struct Plan {
  int64_t N, E, K;
  std::vector<int32_t> idx, row_token, row_of_slot;
  std::vector<int64_t> offsets;
  RoutePlan plan;

  Plan(int64_t n, int64_t e, int64_t k, uint64_t seed) : N(n), E(e), K(k) {
    std::mt19937_64 rng(seed);
    for (int64_t t = 0; t < N; ++t) {
      std::vector<int32_t> experts;
      for (int32_t x = 0; x < E; ++x)
        if (x != 3) experts.push_back(x);
      std::shuffle(experts.begin(), experts.end(), rng);
      idx.insert(idx.end(), experts.begin(), experts.begin() + K);
    }
    row_token.resize(N * K), row_of_slot.resize(N * K), offsets.resize(E + 1);
    plan.offsets = offsets.data(), plan.row_token = row_token.data(), plan.row_of_slot = row_of_slot.data();
    plan.idx = idx.data(), plan.N = N, plan.E = E, plan.K = K;
    cpu::route_plan_build(plan);
  }
};

TEST(RoutePlan, Invariants) {
  Plan pl(37, 6, 3, 7);
  const int64_t R = pl.N * pl.K;
  EXPECT_EQ(pl.offsets[0], 0);
  EXPECT_EQ(pl.offsets[pl.E], R);
  EXPECT_EQ(pl.offsets[4], pl.offsets[3]);  // the unused expert owns no rows
  std::vector<int> seen(R, 0);
  for (int64_t a = 0; a < R; ++a) {
    const int64_t r = pl.row_of_slot[a], e = pl.idx[a];
    ASSERT_GE(r, 0);
    ASSERT_LT(r, R);
    ++seen[r];
    EXPECT_EQ(pl.row_token[r], a / pl.K);                      // the row carries the assignment's token
    EXPECT_TRUE(r >= pl.offsets[e] && r < pl.offsets[e + 1]);  // inside its expert's range
  }
  EXPECT_TRUE(std::all_of(seen.begin(), seen.end(), [](int s) { return s == 1; }));  // each assignment once
  for (int64_t e = 0; e < pl.E; ++e) {
    EXPECT_EQ(pl.offsets[e + 1] - pl.offsets[e], std::count(pl.idx.begin(), pl.idx.end(), e));
    for (int64_t r = pl.offsets[e] + 1; r < pl.offsets[e + 1]; ++r)
      EXPECT_LT(pl.row_token[r - 1], pl.row_token[r]);  // stable: tokens ascend within an expert
  }
}

TEST(RoutePlan, RejectsExpertOutOfRange) {
  Plan pl(4, 6, 2, 7);
  pl.idx[5] = 6;
  EXPECT_THROW(cpu::route_plan_build(pl.plan), std::invalid_argument);
}

TEST(Permute, ForwardAndGradient) {
  Plan pl(13, 6, 3, 11);
  const int64_t C = 5, R = pl.N * pl.K;
  std::vector<double> x = random_vector<double>(pl.N * C, 1), xp(R * C), g = random_vector<double>(R * C, 2);
  std::vector<double> dx(x.size());
  PermuteParams<double> p;
  p.xp = xp.data(), p.x = x.data(), p.dx = dx.data(), p.dxp = g.data(), p.plan = &pl.plan, p.C = C;
  cpu::permute_forward(p);
  for (int64_t r = 0; r < R; ++r)
    for (int64_t c = 0; c < C; ++c) EXPECT_EQ(xp[r * C + c], x[pl.row_token[r] * C + c]);
  cpu::permute_backward(p);
  const std::vector<double> analytic = dx;
  testing::expect_gradient([&] { cpu::permute_forward(p); return testing::dot(xp, g); }, x, analytic,
                           "permute dx");
  p.accumulate_dx = true;  // dx += : doubles what is there
  cpu::permute_backward(p);
  for (size_t i = 0; i < dx.size(); ++i) EXPECT_NEAR(dx[i], 2 * analytic[i], 1e-15);
}

TEST(Combine, Gradient) {
  Plan pl(11, 6, 2, 5);
  const int64_t C = 4, R = pl.N * pl.K;
  std::vector<double> yp = random_vector<double>(R * C, 1), w = random_vector<double>(pl.N * pl.K, 2, 0, 1);
  std::vector<double> y(pl.N * C), g = random_vector<double>(pl.N * C, 3), dyp(R * C), dw(w.size());
  CombineParams<double> p;
  p.y = y.data(), p.yp = yp.data(), p.weights = w.data(), p.dyp = dyp.data(), p.dweights = dw.data();
  p.dy = g.data(), p.plan = &pl.plan, p.C = C;
  cpu::combine_backward(p);
  auto loss = [&] { cpu::combine_forward(p); return testing::dot(y, g); };
  testing::expect_gradient(loss, yp, dyp, "combine dyp");
  testing::expect_gradient(loss, w, dw, "combine dweights");
  cpu::combine_forward(p);
  const std::vector<double> once = y;
  p.accumulate_y = true;
  cpu::combine_forward(p);
  for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], 2 * once[i], 1e-15);
}

TEST(GroupedLinear, GradientAndAccumulation) {
  Plan pl(9, 6, 2, 3);  // expert 3 has no rows and must be skipped
  const int64_t I = 5, O = 4, R = pl.N * pl.K, E = pl.E;
  std::vector<double> inp = random_vector<double>(R * I, 1), W = random_vector<double>(E * O * I, 2);
  std::vector<double> out(R * O), g = random_vector<double>(R * O, 3), dinp(R * I);
  std::vector<double> dW = random_vector<double>(W.size(), 4), dW0 = dW;  // accumulated onto
  GroupedLinearParams<double> p;
  p.out = out.data(), p.inp = inp.data(), p.weight = W.data(), p.dinp = dinp.data(), p.dweight = dW.data();
  p.dout = g.data(), p.offsets = pl.offsets.data(), p.E = E, p.I = I, p.O = O;
  cpu::grouped_linear_forward(p);
  for (int64_t e = 0; e < E; ++e)  // spot-check one row per non-empty expert against a plain dot product
    if (pl.offsets[e + 1] > pl.offsets[e]) {
      const int64_t r = pl.offsets[e];
      for (int64_t o = 0; o < O; ++o) {
        double s = 0;
        for (int64_t i = 0; i < I; ++i) s += inp[r * I + i] * W[(e * O + o) * I + i];
        EXPECT_NEAR(out[r * O + o], s, 1e-14);
      }
    }
  cpu::grouped_linear_backward(p);
  std::vector<double> dW_step(W.size());
  for (size_t i = 0; i < W.size(); ++i) dW_step[i] = dW[i] - dW0[i];
  for (int64_t x = 3 * O * I; x < 4 * O * I; ++x) EXPECT_EQ(dW_step[x], 0.0);  // the empty expert
  auto loss = [&] { cpu::grouped_linear_forward(p); return testing::dot(out, g); };
  testing::expect_gradient(loss, inp, dinp, "grouped linear dinp");
  testing::expect_gradient(loss, W, dW_step, "grouped linear dweight");
}

TEST(MoeOps, FloatAgreesWithDouble) {
  Plan pl(16, 6, 2, 8);
  const int64_t C = 6, F = 5, R = pl.N * pl.K;
  auto run = [&](auto zero) {
    using T = decltype(zero);
    std::vector<T> x = random_vector<T>(pl.N * C, 1), W = random_vector<T>(pl.E * F * C, 2);
    std::vector<T> w = random_vector<T>(pl.N * pl.K, 3, 0, 1), xp(R * C), h(R * F), y(pl.N * F);
    PermuteParams<T> pp;
    pp.xp = xp.data(), pp.x = x.data(), pp.plan = &pl.plan, pp.C = C;
    GroupedLinearParams<T> gp;
    gp.out = h.data(), gp.inp = xp.data(), gp.weight = W.data(), gp.offsets = pl.offsets.data();
    gp.E = pl.E, gp.I = C, gp.O = F;
    CombineParams<T> cp;
    cp.y = y.data(), cp.yp = h.data(), cp.weights = w.data(), cp.plan = &pl.plan, cp.C = F;
    cpu::permute_forward(pp);
    cpu::grouped_linear_forward(gp);
    cpu::combine_forward(cp);
    return std::vector<double>(y.begin(), y.end());
  };
  const std::vector<double> f = run(0.0f), d = run(0.0);
  for (size_t i = 0; i < d.size(); ++i) EXPECT_NEAR(f[i], d[i], 1e-5);
}

}  // namespace
}  // namespace stepwise
