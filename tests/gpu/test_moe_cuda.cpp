// CUDA MoE router, routing plan, permute and combine against the CPU references (stepwise::cpu, float) on fresh
// random inputs with poisoned outputs: T = float and bf16, ties in the top-k, selection bias, renormalisation on/off,
// aux loss on/off, experts with no rows, skewed loads, odd feature sizes. Grouped linears: test_grouped_linear_cuda.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <stdexcept>

#include "cuda/moe.h"
#include "gpu_testing.h"
#include "ops/moe.h"

namespace stepwise {
namespace {

using namespace gpu_testing;

cuda::DeviceBuffer<int32_t> filled_ints(int64_t n, int32_t value) {
  return cuda::DeviceBuffer<int32_t>(std::vector<int32_t>(static_cast<size_t>(n), value));
}

// ---------------------------------------------------------------------------------------------------------------
// Router

struct RouterCase {
  int64_t N, E, K;
  bool renormalize, with_bias;
  double aux_coef;
};

// The CPU forward's outputs (also the inputs of the backward comparison).
struct RouterOutputs {
  std::vector<float> probs, weights, load, aux;
  std::vector<int32_t> idx;
};

RouterOutputs cpu_router_forward(const RouterCase& c, const std::vector<float>& logits, const std::vector<float>& bias) {
  RouterOutputs o;
  o.probs.resize(c.N * c.E), o.weights.resize(c.N * c.K), o.load.resize(c.E), o.aux.resize(1), o.idx.resize(c.N * c.K);
  RouterParams<float> p;
  p.probs = o.probs.data(), p.idx = o.idx.data(), p.weights = o.weights.data(), p.load = o.load.data();
  p.aux_loss = o.aux.data(), p.logits = logits.data(), p.bias = bias.empty() ? nullptr : bias.data();
  p.N = c.N, p.E = c.E, p.K = c.K, p.renormalize = c.renormalize, p.aux_coef = c.aux_coef;
  cpu::router_forward(p);
  return o;
}

template <class T>
void check_router(const RouterCase& c, std::vector<float> logits, uint64_t seed) {
  SCOPED_TRACE(testing::Message() << "N=" << c.N << " E=" << c.E << " K=" << c.K << " renorm=" << c.renormalize
                                  << " bias=" << c.with_bias << " aux=" << c.aux_coef);
  logits = representable<T>(std::move(logits));
  const std::vector<float> bias = c.with_bias ? random_vector(c.E, seed + 1, -0.05f, 0.05f) : std::vector<float>{};
  const RouterOutputs want = cpu_router_forward(c, logits, bias);

  // forward
  auto d_logits = upload<T>(logits);
  auto d_bias = upload<float>(bias.empty() ? std::vector<float>{0.f} : bias);
  auto d_probs = poisoned<float>(c.N * c.E), d_weights = poisoned<float>(c.N * c.K);
  auto d_load = poisoned<float>(c.E), d_aux = poisoned<float>(1);
  auto d_idx = filled_ints(c.N * c.K, -7);
  RouterParams<T, float> p;
  p.probs = d_probs.data(), p.idx = d_idx.data(), p.weights = d_weights.data(), p.load = d_load.data();
  p.aux_loss = d_aux.data(), p.logits = d_logits.data(), p.bias = c.with_bias ? d_bias.data() : nullptr;
  p.N = c.N, p.E = c.E, p.K = c.K, p.renormalize = c.renormalize, p.aux_coef = c.aux_coef;
  cuda::router_forward(p);
  cuda::device_synchronize();
  EXPECT_EQ(d_idx.download(), want.idx);
  // Routing math is fp32 for every T (the logits are T), so the fp32 tolerance applies to all its outputs.
  EXPECT_LT(normalized_error(download(d_probs), want.probs), tolerance<float>());
  EXPECT_LT(normalized_error(download(d_weights), want.weights), tolerance<float>());
  EXPECT_LT(normalized_error(download(d_load), want.load), tolerance<float>());
  EXPECT_LT(normalized_error(download(d_aux), want.aux), tolerance<float>()) << "aux " << want.aux[0];

  // backward from the CPU forward's saved tensors, with and without the weights' gradient
  for (const bool with_dweights : {true, false}) {
    // Without dweights, dlogits is zero when aux_coef == 0, and rounding noise when K == E (every f_e = 1/K, so
    // d aux / d probs is the same for every expert and the softmax Jacobian cancels it): nothing to compare.
    if (!with_dweights && (c.aux_coef == 0 || c.K == c.E)) continue;
    const std::vector<float> dweights = random_vector(c.N * c.K, seed + 2);
    std::vector<float> want_dlogits(c.N * c.E);
    RouterParams<float> cp;
    cp.probs = const_cast<float*>(want.probs.data()), cp.idx = const_cast<int32_t*>(want.idx.data());
    cp.weights = const_cast<float*>(want.weights.data()), cp.load = const_cast<float*>(want.load.data());
    cp.dlogits = want_dlogits.data(), cp.dweights = with_dweights ? dweights.data() : nullptr;
    cp.N = c.N, cp.E = c.E, cp.K = c.K, cp.renormalize = c.renormalize, cp.aux_coef = c.aux_coef;
    cpu::router_backward(cp);

    auto b_probs = upload<float>(want.probs), b_weights = upload<float>(want.weights);
    auto b_load = upload<float>(want.load), b_dweights = upload<float>(dweights);
    cuda::DeviceBuffer<int32_t> b_idx(want.idx);
    auto d_dlogits = poisoned<T>(c.N * c.E);
    RouterParams<T, float> bp;
    bp.probs = b_probs.data(), bp.idx = b_idx.data(), bp.weights = b_weights.data(), bp.load = b_load.data();
    bp.dlogits = d_dlogits.data(), bp.dweights = with_dweights ? b_dweights.data() : nullptr;
    bp.N = c.N, bp.E = c.E, bp.K = c.K, bp.renormalize = c.renormalize, bp.aux_coef = c.aux_coef;
    cuda::router_backward(bp);
    cuda::device_synchronize();
    EXPECT_LT(normalized_error(download(d_dlogits), want_dlogits), tolerance<T>()) << "dweights " << with_dweights;
  }
}

const RouterCase kRouterCases[] = {
    {37, 8, 2, false, false, 0.0},   {300, 64, 6, true, true, 0.01}, {129, 160, 8, true, false, 0.1},
    {5, 3, 3, false, true, 1.0},     {1000, 16, 1, true, true, 0.02}, {64, 33, 4, false, false, 0.5},
};

template <class T>
void router_random_cases() {
  uint64_t seed = 40;
  for (const RouterCase& c : kRouterCases) {
    seed += 5;
    check_router<T>(c, random_vector(c.N * c.E, seed, -3.f, 3.f), seed);
  }
}

TEST(MoeCuda, RouterFp32) {
  STEPWISE_REQUIRE_GPU();
  router_random_cases<float>();
}

TEST(MoeCuda, RouterBf16) {
  STEPWISE_REQUIRE_GPU();
  router_random_cases<bf16>();
}

// Logits with many exact ties (three distinct values per row): the top-k must pick the lower expert id, like the CPU.
TEST(MoeCuda, RouterTiesGoToLowerExpert) {
  STEPWISE_REQUIRE_GPU();
  for (const RouterCase& c : {RouterCase{50, 40, 5, true, false, 0.1}, RouterCase{20, 7, 3, false, false, 0.0}}) {
    std::vector<float> logits(c.N * c.E);
    for (int64_t n = 0; n < c.N; ++n)
      for (int64_t e = 0; e < c.E; ++e) logits[n * c.E + e] = static_cast<float>((e * 7 + n) % 3) * 0.5f;
    check_router<float>(c, logits, 7);
    check_router<bf16>(c, logits, 8);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Routing plan

// idx (N, K): K distinct experts per token drawn from `used` (all experts when empty), the first used expert taking
// about `heavy` of the first slots (a skewed load).
std::vector<int32_t> random_assignments(int64_t N, int64_t E, int64_t K, std::vector<int32_t> used, double heavy,
                                        uint64_t seed) {
  if (used.empty()) {
    used.resize(E);
    std::iota(used.begin(), used.end(), 0);
  }
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> coin(0, 1);
  std::vector<int32_t> idx(N * K);
  for (int64_t n = 0; n < N; ++n) {
    std::vector<int32_t> pool = used;
    std::shuffle(pool.begin(), pool.end(), rng);
    if (coin(rng) < heavy) std::iter_swap(pool.begin(), std::find(pool.begin(), pool.end(), used[0]));
    std::copy(pool.begin(), pool.begin() + K, idx.begin() + n * K);
  }
  return idx;
}

struct HostPlan {
  std::vector<int64_t> offsets;
  std::vector<int32_t> row_token, row_of_slot;
};

// The row arrays hold at least one element: with N*K = 0 an empty vector's data() is null, which the CPU oracle
// rejects.
HostPlan cpu_plan(const std::vector<int32_t>& idx, int64_t N, int64_t E, int64_t K) {
  const int64_t rows = std::max<int64_t>(N * K, 1);
  HostPlan h{std::vector<int64_t>(E + 1), std::vector<int32_t>(rows), std::vector<int32_t>(rows)};
  RoutePlan p;
  p.offsets = h.offsets.data(), p.row_token = h.row_token.data(), p.row_of_slot = h.row_of_slot.data();
  p.idx = idx.data(), p.N = N, p.E = E, p.K = K;
  cpu::route_plan_build(p);
  return h;
}

void check_plan(int64_t N, int64_t E, int64_t K, std::vector<int32_t> used, double heavy, uint64_t seed) {
  SCOPED_TRACE(testing::Message() << "N=" << N << " E=" << E << " K=" << K << " heavy=" << heavy);
  const std::vector<int32_t> idx = random_assignments(N, E, K, std::move(used), heavy, seed);
  const HostPlan want = cpu_plan(idx, N, E, K);
  cuda::DeviceBuffer<int32_t> d_idx(idx.empty() ? std::vector<int32_t>{0} : idx);
  cuda::DeviceBuffer<int64_t> d_offsets(std::vector<int64_t>(E + 1, -7));
  auto d_row_token = filled_ints(std::max<int64_t>(N * K, 1), -7), d_row_of_slot = filled_ints(std::max<int64_t>(N * K, 1), -7);
  RoutePlan p;
  p.offsets = d_offsets.data(), p.row_token = d_row_token.data(), p.row_of_slot = d_row_of_slot.data();
  p.idx = d_idx.data(), p.N = N, p.E = E, p.K = K;
  cuda::route_plan_build(p);
  cuda::device_synchronize();
  EXPECT_EQ(d_offsets.download(), want.offsets);
  if (N * K == 0) return;
  EXPECT_EQ(d_row_token.download(), want.row_token);
  EXPECT_EQ(d_row_of_slot.download(), want.row_of_slot);
}

TEST(MoeCuda, RoutePlanMatchesCpuExactly) {
  STEPWISE_REQUIRE_GPU();
  check_plan(0, 4, 2, {}, 0, 1);                  // no tokens: offsets all zero
  check_plan(1, 64, 1, {}, 0, 2);
  check_plan(37, 8, 2, {}, 0, 3);
  check_plan(3000, 64, 4, {}, 0, 4);              // R = 12000: several scatter tiles per expert
  check_plan(5000, 16, 2, {0, 1, 2, 3, 9}, 0.8, 5);   // 11 empty experts, expert 0 takes ~80% of the tokens
  check_plan(700, 300, 8, {}, 0, 6);              // more experts than a warp scan step
  check_plan(2049, 3, 3, {}, 0, 7);               // K == E: every expert gets every token
}

// ---------------------------------------------------------------------------------------------------------------
// Permute and combine (on a plan built by the CPU from random assignments, then uploaded)

struct DevicePlan {
  cuda::DeviceBuffer<int64_t> offsets;
  cuda::DeviceBuffer<int32_t> row_token, row_of_slot;
  RoutePlan plan;
  DevicePlan(const HostPlan& h, int64_t N, int64_t E, int64_t K)
      : offsets(h.offsets), row_token(h.row_token), row_of_slot(h.row_of_slot) {
    plan.offsets = offsets.data(), plan.row_token = row_token.data(), plan.row_of_slot = row_of_slot.data();
    plan.N = N, plan.E = E, plan.K = K;
  }
};

template <class T>
void check_permute_combine(int64_t N, int64_t E, int64_t K, int64_t C, uint64_t seed) {
  SCOPED_TRACE(testing::Message() << "N=" << N << " E=" << E << " K=" << K << " C=" << C);
  const int64_t R = N * K;
  const std::vector<int32_t> idx = random_assignments(N, E, K, {}, 0.3, seed);
  HostPlan host = cpu_plan(idx, N, E, K);
  RoutePlan cplan;
  cplan.offsets = host.offsets.data(), cplan.row_token = host.row_token.data();
  cplan.row_of_slot = host.row_of_slot.data(), cplan.idx = idx.data(), cplan.N = N, cplan.E = E, cplan.K = K;
  DevicePlan dplan(host, N, E, K);

  const auto x = representable<T>(random_vector(N * C, seed + 1));
  const auto xp_grad = representable<T>(random_vector(R * C, seed + 2));
  const auto yp = representable<T>(random_vector(R * C, seed + 3));
  const auto y0 = representable<T>(random_vector(N * C, seed + 4));
  const auto dy = representable<T>(random_vector(N * C, seed + 5));
  const auto weights = random_vector(N * K, seed + 6, 0.f, 1.f);

  {  // permute forward
    std::vector<float> want(R * C);
    PermuteParams<float> cp;
    cp.xp = want.data(), cp.x = x.data(), cp.plan = &cplan, cp.C = C;
    cpu::permute_forward(cp);
    auto d_x = upload<T>(x);
    auto d_xp = poisoned<T>(R * C);
    PermuteParams<T> p;
    p.xp = d_xp.data(), p.x = d_x.data(), p.plan = &dplan.plan, p.C = C;
    cuda::permute_forward(p);
    cuda::device_synchronize();
    EXPECT_LT(normalized_error(download(d_xp), want), tolerance<T>()) << "permute_forward";
  }
  for (const bool accumulate : {false, true}) {  // permute backward
    std::vector<float> want = y0;
    PermuteParams<float> cp;
    cp.dx = want.data(), cp.dxp = xp_grad.data(), cp.plan = &cplan, cp.C = C, cp.accumulate_dx = accumulate;
    cpu::permute_backward(cp);
    auto d_dxp = upload<T>(xp_grad);
    auto d_dx = accumulate ? upload<T>(y0) : poisoned<T>(N * C);
    PermuteParams<T> p;
    p.dx = d_dx.data(), p.dxp = d_dxp.data(), p.plan = &dplan.plan, p.C = C, p.accumulate_dx = accumulate;
    cuda::permute_backward(p);
    cuda::device_synchronize();
    EXPECT_LT(normalized_error(download(d_dx), want), tolerance<T>()) << "permute_backward acc=" << accumulate;
  }
  for (const bool accumulate : {false, true}) {  // combine forward
    std::vector<float> want = y0;
    CombineParams<float> cp;
    cp.y = want.data(), cp.yp = yp.data(), cp.weights = weights.data(), cp.plan = &cplan, cp.C = C;
    cp.accumulate_y = accumulate;
    cpu::combine_forward(cp);
    auto d_yp = upload<T>(yp);
    auto d_weights = upload<float>(weights);
    auto d_y = accumulate ? upload<T>(y0) : poisoned<T>(N * C);
    CombineParams<T, float> p;
    p.y = d_y.data(), p.yp = d_yp.data(), p.weights = d_weights.data(), p.plan = &dplan.plan, p.C = C;
    p.accumulate_y = accumulate;
    cuda::combine_forward(p);
    cuda::device_synchronize();
    EXPECT_LT(normalized_error(download(d_y), want), tolerance<T>()) << "combine_forward acc=" << accumulate;
  }
  for (const int wanted : {3, 1, 2}) {  // combine backward: both gradients, only dyp, only dweights
    const bool want_dyp = wanted & 1, want_dweights = wanted & 2;
    std::vector<float> want_dyp_v(R * C), want_dw(N * K);
    CombineParams<float> cp;
    cp.yp = yp.data(), cp.weights = weights.data(), cp.dy = dy.data(), cp.plan = &cplan, cp.C = C;
    cp.dyp = want_dyp ? want_dyp_v.data() : nullptr, cp.dweights = want_dweights ? want_dw.data() : nullptr;
    cpu::combine_backward(cp);
    auto d_yp = upload<T>(yp), d_dy = upload<T>(dy);
    auto d_weights = upload<float>(weights);
    auto d_dyp = poisoned<T>(R * C);
    auto d_dw = poisoned<float>(N * K);
    CombineParams<T, float> p;
    p.yp = d_yp.data(), p.weights = d_weights.data(), p.dy = d_dy.data(), p.plan = &dplan.plan, p.C = C;
    p.dyp = want_dyp ? d_dyp.data() : nullptr, p.dweights = want_dweights ? d_dw.data() : nullptr;
    cuda::combine_backward(p);
    cuda::device_synchronize();
    if (want_dyp) {
      EXPECT_LT(normalized_error(download(d_dyp), want_dyp_v), tolerance<T>()) << "combine dyp";
    }
    if (want_dweights) {
      EXPECT_LT(normalized_error(download(d_dw), want_dw), tolerance<T>()) << "combine dweights";
    }
  }
}

template <class T>
void permute_combine_cases() {
  check_permute_combine<T>(37, 8, 2, 37, 11);     // odd C: element-wise copies
  check_permute_combine<T>(64, 16, 4, 64, 12);    // C a multiple of 16 bytes: vector copies
  check_permute_combine<T>(9, 5, 5, 1, 13);       // one feature, K == E
  check_permute_combine<T>(300, 32, 3, 300, 14);  // C > the block size
}

TEST(MoeCuda, PermuteCombineFp32) {
  STEPWISE_REQUIRE_GPU();
  permute_combine_cases<float>();
}

TEST(MoeCuda, PermuteCombineBf16) {
  STEPWISE_REQUIRE_GPU();
  permute_combine_cases<bf16>();
}

// ---------------------------------------------------------------------------------------------------------------
// The forward chain on the device, every step fed by the previous device step (router -> plan -> permute ->
// grouped linear -> combine), against the same chain on the CPU.

template <class T>
void check_moe_chain(int64_t N, int64_t E, int64_t K, int64_t C, int64_t F, uint64_t seed) {
  SCOPED_TRACE(testing::Message() << "chain N=" << N << " E=" << E << " K=" << K << " C=" << C << " F=" << F);
  const int64_t R = N * K;
  const auto logits = representable<T>(random_vector(N * E, seed, -2.f, 2.f));
  const auto x = representable<T>(random_vector(N * C, seed + 1));
  const auto weight = representable<T>(random_vector(E * F * C, seed + 2));

  const RouterCase rc{N, E, K, true, false, 0.0};
  const RouterOutputs routed = cpu_router_forward(rc, logits, {});
  HostPlan host = cpu_plan(routed.idx, N, E, K);
  RoutePlan cplan;
  cplan.offsets = host.offsets.data(), cplan.row_token = host.row_token.data();
  cplan.row_of_slot = host.row_of_slot.data(), cplan.N = N, cplan.E = E, cplan.K = K;
  std::vector<float> xp(R * C), hp(R * F), want(N * F);
  PermuteParams<float> pp;
  pp.xp = xp.data(), pp.x = x.data(), pp.plan = &cplan, pp.C = C;
  cpu::permute_forward(pp);
  GroupedLinearParams<float> gp;
  gp.out = hp.data(), gp.inp = xp.data(), gp.weight = weight.data(), gp.offsets = host.offsets.data();
  gp.E = E, gp.I = C, gp.O = F;
  cpu::grouped_linear_forward(gp);
  CombineParams<float> cp;
  cp.y = want.data(), cp.yp = hp.data(), cp.weights = routed.weights.data(), cp.plan = &cplan, cp.C = F;
  cpu::combine_forward(cp);

  auto d_logits = upload<T>(logits), d_x = upload<T>(x), d_weight = upload<T>(weight);
  auto d_probs = poisoned<float>(N * E), d_weights = poisoned<float>(R), d_load = poisoned<float>(E);
  auto d_idx = filled_ints(R, -7), d_row_token = filled_ints(R, -7), d_row_of_slot = filled_ints(R, -7);
  cuda::DeviceBuffer<int64_t> d_offsets(std::vector<int64_t>(E + 1, -7));
  auto d_xp = poisoned<T>(R * C), d_hp = poisoned<T>(R * F), d_y = poisoned<T>(N * F);
  RouterParams<T, float> rp;
  rp.probs = d_probs.data(), rp.idx = d_idx.data(), rp.weights = d_weights.data(), rp.load = d_load.data();
  rp.logits = d_logits.data(), rp.N = N, rp.E = E, rp.K = K, rp.renormalize = true;
  cuda::router_forward(rp);
  RoutePlan dplan;
  dplan.offsets = d_offsets.data(), dplan.row_token = d_row_token.data(), dplan.row_of_slot = d_row_of_slot.data();
  dplan.idx = d_idx.data(), dplan.N = N, dplan.E = E, dplan.K = K;
  cuda::route_plan_build(dplan);
  PermuteParams<T> dpp;
  dpp.xp = d_xp.data(), dpp.x = d_x.data(), dpp.plan = &dplan, dpp.C = C;
  cuda::permute_forward(dpp);
  GroupedLinearParams<T, float> dgp;
  dgp.out = d_hp.data(), dgp.inp = d_xp.data(), dgp.weight = d_weight.data(), dgp.offsets = d_offsets.data();
  dgp.E = E, dgp.I = C, dgp.O = F;
  cuda::grouped_linear_forward(dgp);
  CombineParams<T, float> dcp;
  dcp.y = d_y.data(), dcp.yp = d_hp.data(), dcp.weights = d_weights.data(), dcp.plan = &dplan, dcp.C = F;
  cuda::combine_forward(dcp);
  cuda::device_synchronize();
  EXPECT_EQ(d_offsets.download(), host.offsets);
  EXPECT_LT(normalized_error(download(d_y), want), tolerance<T>());
}

TEST(MoeCuda, ForwardChainMatchesCpu) {
  STEPWISE_REQUIRE_GPU();
  check_moe_chain<float>(200, 16, 3, 96, 72, 500);
  check_moe_chain<bf16>(200, 16, 3, 96, 72, 510);
  check_moe_chain<bf16>(77, 9, 2, 45, 33, 520);
}

// ---------------------------------------------------------------------------------------------------------------
// Malformed params throw on the host before anything is launched (runs without a device too).

TEST(MoeCuda, InvalidParamsThrowBeforeLaunch) {
  float f = 0;
  int32_t i = 0;
  int64_t offsets[2] = {0, 0};
  RouterParams<float, float> r;
  r.probs = &f, r.idx = &i, r.weights = &f, r.load = &f, r.logits = &f, r.N = 4, r.E = 2, r.K = 3;
  EXPECT_THROW(cuda::router_forward(r), std::invalid_argument);   // K > E
  r.K = 1, r.aux_coef = -1;
  EXPECT_THROW(cuda::router_forward(r), std::invalid_argument);   // negative aux_coef
  r.aux_coef = 0.1, r.dlogits = &f, r.load = nullptr;
  EXPECT_THROW(cuda::router_backward(r), std::invalid_argument);  // aux term needs the forward's load
  r.load = &f, r.E = 100000, r.K = 1;
  EXPECT_THROW(cuda::router_forward(r), std::invalid_argument);   // more experts than shared memory holds

  RoutePlan plan;
  plan.offsets = offsets, plan.row_token = &i, plan.row_of_slot = &i, plan.idx = &i, plan.N = 1, plan.E = 0, plan.K = 1;
  EXPECT_THROW(cuda::route_plan_build(plan), std::invalid_argument);   // E = 0
  plan.E = 1, plan.offsets = nullptr;
  EXPECT_THROW(cuda::route_plan_build(plan), std::invalid_argument);   // no offsets

  PermuteParams<float> pp;
  pp.C = 4;
  EXPECT_THROW(cuda::permute_forward(pp), std::invalid_argument);      // no plan

  GroupedLinearParams<float, float> g;
  g.inp = &f, g.out = &f, g.weight = &f, g.offsets = offsets, g.E = 1, g.I = -1, g.O = 2;
  EXPECT_THROW(cuda::grouped_linear_forward(g), std::invalid_argument);   // negative I
  g.I = 2, g.E = 5000;
  EXPECT_THROW(cuda::grouped_linear_forward(g), std::invalid_argument);   // too many experts
  g.E = 1, g.offsets = nullptr;
  EXPECT_THROW(cuda::grouped_linear_forward(g), std::invalid_argument);   // no offsets
}

}  // namespace
}  // namespace stepwise
