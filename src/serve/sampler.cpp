// Sampling: candidates sorted by logit, cut by top-k then by cumulative probability (top-p), then one uniform draw
// from the request's generator over the renormalised candidates. Greedy is argmax with ties toward the lower id.
#include "serve/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace stepwise {

std::vector<double> log_softmax(const float* logits, int64_t V) {
  double mx = -INFINITY;
  for (int64_t v = 0; v < V; ++v) mx = std::max(mx, static_cast<double>(logits[v]));
  double sum = 0;
  for (int64_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(logits[v]) - mx);
  const double lse = mx + std::log(sum);
  std::vector<double> out(static_cast<size_t>(V));
  for (int64_t v = 0; v < V; ++v) out[static_cast<size_t>(v)] = static_cast<double>(logits[v]) - lse;
  return out;
}

std::vector<std::pair<int32_t, double>> top_logprobs(const std::vector<double>& logprobs, int64_t n) {
  std::vector<int32_t> ids(logprobs.size());
  std::iota(ids.begin(), ids.end(), 0);
  const size_t k = std::min(ids.size(), static_cast<size_t>(std::max<int64_t>(n, 0)));
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(), [&](int32_t a, int32_t b) {
    const double la = logprobs[static_cast<size_t>(a)], lb = logprobs[static_cast<size_t>(b)];
    return la != lb ? la > lb : a < b;
  });
  std::vector<std::pair<int32_t, double>> out;
  for (size_t i = 0; i < k; ++i) out.emplace_back(ids[i], logprobs[static_cast<size_t>(ids[i])]);
  return out;
}

int32_t sample_token(const float* logits, int64_t V, const SamplingParams& params, std::mt19937_64& rng) {
  if (params.temperature <= 0) {
    int64_t best = 0;
    for (int64_t v = 1; v < V; ++v)
      if (logits[v] > logits[best]) best = v;
    return static_cast<int32_t>(best);
  }
  std::vector<int32_t> order(static_cast<size_t>(V));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  size_t keep = order.size();
  if (params.top_k > 0) keep = std::min(keep, static_cast<size_t>(params.top_k));
  const double inv_t = 1.0 / params.temperature, top = static_cast<double>(logits[order[0]]);
  std::vector<double> p(keep);
  double sum = 0;
  for (size_t i = 0; i < keep; ++i) {
    p[i] = std::exp((static_cast<double>(logits[order[i]]) - top) * inv_t);
    sum += p[i];
  }
  if (params.top_p < 1.0) {   // smallest prefix whose probability reaches top_p (at least one token)
    double cum = 0;
    size_t cut = keep;
    for (size_t i = 0; i < keep; ++i) {
      cum += p[i] / sum;
      if (cum >= params.top_p) {
        cut = i + 1;
        break;
      }
    }
    keep = cut;
    p.resize(keep);
    sum = std::accumulate(p.begin(), p.end(), 0.0);
  }
  // one draw in [0, sum); 53-bit uniform from the generator (portable, unlike std::uniform_real_distribution)
  const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53 * sum;
  double cum = 0;
  for (size_t i = 0; i < keep; ++i) {
    cum += p[i];
    if (u < cum) return order[i];
  }
  return order[keep - 1];
}

TokenLogprob token_logprob(const float* logits, int64_t V, int32_t token, int64_t top_n) {
  const std::vector<double> lp = log_softmax(logits, V);
  TokenLogprob t;
  t.token = token;
  t.logprob = lp[static_cast<size_t>(token)];
  if (top_n > 0) t.top = top_logprobs(lp, top_n);
  return t;
}

}  // namespace stepwise
