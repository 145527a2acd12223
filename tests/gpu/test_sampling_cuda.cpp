// cuda::sample: greedy equals the host argmax (ties to the lowest id); sampled tokens always lie in the top-k / top-p
// candidate set computed on the host the way src/serve/sampler.cpp does; the same (seed, step) gives the same
// token; the draw frequencies follow the softmax probabilities.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <set>

#include "cuda/sampling.h"
#include "gpu_testing.h"

namespace stepwise {
namespace {

using namespace gpu_testing;

struct RowConfig {
  float temperature;
  int32_t top_k;
  float top_p;
};

// Runs cuda::sample on rows (S, V) with per-row settings; returns the tokens.
std::vector<int32_t> run_sample(const std::vector<float>& logits, int64_t V, const std::vector<RowConfig>& cfg,
                                const std::vector<uint64_t>& seeds, const std::vector<int64_t>& steps) {
  const int64_t S = static_cast<int64_t>(cfg.size());
  std::vector<float> temperature, top_p;
  std::vector<int32_t> top_k;
  for (const RowConfig& c : cfg)
    temperature.push_back(c.temperature), top_k.push_back(c.top_k), top_p.push_back(c.top_p);
  cuda::DeviceBuffer<float> dlogits(logits), dtemp(temperature), dtop_p(top_p);
  cuda::DeviceBuffer<int32_t> dtop_k(top_k), dtokens(std::vector<int32_t>(static_cast<size_t>(S), -7));
  cuda::DeviceBuffer<uint64_t> dseed(seeds);
  cuda::DeviceBuffer<int64_t> dstep(steps);
  cuda::SampleParams p;
  p.tokens = dtokens.data(), p.logits = dlogits.data(), p.temperature = dtemp.data(), p.top_k = dtop_k.data();
  p.top_p = dtop_p.data(), p.seed = dseed.data(), p.step = dstep.data(), p.S = S, p.V = V;
  cuda::sample(p);
  cuda::device_synchronize();
  return dtokens.download();
}

// The candidates of sampler.cpp: ids sorted by logit (stable, ties by id), cut to top_k, then to the shortest prefix
// whose probability reaches top_p. `slack` widens the top-p cut by a hair (fixed-point vs double sums).
std::set<int32_t> candidates(const float* logits, int64_t V, const RowConfig& c, double slack = 1e-6) {
  std::vector<int32_t> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  size_t keep = order.size();
  if (c.top_k > 0) keep = std::min(keep, static_cast<size_t>(c.top_k));
  std::vector<double> p(keep);
  double sum = 0;
  for (size_t i = 0; i < keep; ++i)
    sum += p[i] = std::exp((double(logits[order[i]]) - logits[order[0]]) / c.temperature);
  if (c.top_p < 1.f) {
    double cum = 0;
    for (size_t i = 0; i < keep; ++i) {
      cum += p[i] / sum;
      if (cum >= c.top_p + slack) {
        keep = i + 1;
        break;
      }
    }
  }
  return std::set<int32_t>(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep));
}

int32_t host_argmax(const float* logits, int64_t V) {
  int64_t best = 0;
  for (int64_t v = 1; v < V; ++v)
    if (logits[v] > logits[best]) best = v;
  return static_cast<int32_t>(best);
}

TEST(SamplingCuda, GreedyIsArgmaxWithLowestIdOnTies) {
  STEPWISE_REQUIRE_GPU();
  const int64_t V = 50257, S = 5;
  auto logits = random_vector(S * V, 11, -5.f, 5.f);
  logits[1 * V + 17] = logits[1 * V + 40000] = 9.f;               // tie at the top: 17 wins
  std::fill(logits.begin() + 2 * V, logits.begin() + 3 * V, 0.5f);  // all equal: 0
  for (int64_t v = 0; v < V; v += 2) logits[3 * V + v] = -INFINITY; // half -inf
  logits[4 * V + V - 1] = 6.f;                                       // maximum at the last id
  const std::vector<RowConfig> cfg(S, RowConfig{0.f, 0, 1.f});
  const auto tokens = run_sample(logits, V, cfg, std::vector<uint64_t>(S, 3), std::vector<int64_t>(S, 0));
  for (int64_t r = 0; r < S; ++r) EXPECT_EQ(tokens[r], host_argmax(logits.data() + r * V, V)) << "row " << r;
  EXPECT_EQ(tokens[1], 17);
  EXPECT_EQ(tokens[2], 0);
}

TEST(SamplingCuda, TokensStayInTopKTopPSet) {
  STEPWISE_REQUIRE_GPU();
  const int64_t V = 5003, draws = 256;
  auto one = random_vector(V, 21, -4.f, 4.f);
  one[100] = one[200] = 4.5f;  // a tie among the best candidates
  const RowConfig configs[] = {{1.f, 0, 1.f}, {0.7f, 50, 1.f}, {1.3f, 0, 0.9f}, {1.f, 20, 0.5f},
                               {2.f, 6000, 0.95f}, {1.f, 1, 1.f}, {0.5f, 0, 1e-6f}};
  for (const RowConfig& c : configs) {
    std::vector<float> logits;
    for (int64_t r = 0; r < draws; ++r) logits.insert(logits.end(), one.begin(), one.end());
    std::vector<int64_t> steps(draws);
    std::iota(steps.begin(), steps.end(), 0);
    const auto tokens =
        run_sample(logits, V, std::vector<RowConfig>(draws, c), std::vector<uint64_t>(draws, 99), steps);
    const auto allowed = candidates(one.data(), V, c);
    std::set<int32_t> seen;
    for (int64_t r = 0; r < draws; ++r) {
      EXPECT_TRUE(allowed.count(tokens[r])) << "token " << tokens[r] << " outside the candidates; T=" << c.temperature
                                            << " k=" << c.top_k << " p=" << c.top_p;
      seen.insert(tokens[r]);
    }
    if (allowed.size() == 1) {
      EXPECT_EQ(*seen.begin(), host_argmax(one.data(), V));
    }
    if (allowed.size() >= 20) {
      EXPECT_GT(seen.size(), 5u) << "draws barely vary; T=" << c.temperature;
    }
  }
}

TEST(SamplingCuda, SameSeedAndStepGiveSameToken) {
  STEPWISE_REQUIRE_GPU();
  const int64_t V = 1000, S = 64;
  const auto one = random_vector(V, 31, -2.f, 2.f);
  std::vector<float> logits;
  for (int64_t r = 0; r < S; ++r) logits.insert(logits.end(), one.begin(), one.end());
  std::vector<uint64_t> seeds(S);
  std::vector<int64_t> steps(S);
  for (int64_t r = 0; r < S; ++r) seeds[r] = 1000 + r % 8, steps[r] = r / 8 % 4;  // each (seed, step) twice
  const std::vector<RowConfig> cfg(S, RowConfig{1.f, 0, 0.95f});
  const auto first = run_sample(logits, V, cfg, seeds, steps);
  EXPECT_EQ(run_sample(logits, V, cfg, seeds, steps), first);  // same launch again
  for (int64_t r = 0; r < S; ++r)
    for (int64_t o = 0; o < S; ++o)
      if (seeds[r] == seeds[o] && steps[r] == steps[o]) {
        EXPECT_EQ(first[r], first[o]) << r << " vs " << o;
      }
}

TEST(SamplingCuda, FrequenciesFollowProbabilities) {
  STEPWISE_REQUIRE_GPU();
  // Three tokens with probabilities 0.5, 0.3, 0.2 at temperature 1 (the rest is cut by top_k = 3).
  const int64_t V = 10, S = 8000;
  std::vector<float> one(V, -3.f);
  one[4] = std::log(0.5f), one[7] = std::log(0.3f), one[1] = std::log(0.2f);
  std::vector<float> logits;
  for (int64_t r = 0; r < S; ++r) logits.insert(logits.end(), one.begin(), one.end());
  std::vector<int64_t> steps(S);
  std::iota(steps.begin(), steps.end(), 0);
  const auto tokens = run_sample(logits, V, std::vector<RowConfig>(S, RowConfig{1.f, 3, 1.f}),
                                 std::vector<uint64_t>(S, 5), steps);
  std::vector<int> count(V, 0);
  for (int32_t t : tokens) ++count[t];
  EXPECT_EQ(count[4] + count[7] + count[1], S);
  EXPECT_NEAR(count[4] / double(S), 0.5, 0.03);  // ~5 standard deviations
  EXPECT_NEAR(count[7] / double(S), 0.3, 0.03);
  EXPECT_NEAR(count[1] / double(S), 0.2, 0.03);
}

TEST(SamplingCuda, RejectsBadShapes) {  // host-side checks: no GPU needed
  cuda::SampleParams p;
  p.S = 2, p.V = 0;
  EXPECT_THROW(cuda::sample(p), std::invalid_argument);
  p.V = 10;
  EXPECT_THROW(cuda::sample(p), std::invalid_argument);  // null pointers
  p.S = 0;
  EXPECT_NO_THROW(cuda::sample(p));
}

}  // namespace
}  // namespace stepwise
