// Token sampling from one row of logits: greedy (temperature 0), temperature, top-k, top-p, driven by a per-request
// seeded generator (the same seed and logits give the same tokens), and log-probabilities of the unmodified
// distribution (the chosen token's and the top-n alternatives).
#pragma once
#include <cstdint>
#include <random>
#include <vector>

#include "serve/engine.h"

namespace stepwise {

// log_softmax of logits (V) in double.
std::vector<double> log_softmax(const float* logits, int64_t V);

// The n most likely tokens of a log-probability row, most likely first (ties: lower id first).
std::vector<std::pair<int32_t, double>> top_logprobs(const std::vector<double>& logprobs, int64_t n);

// Chooses a token from logits (V) under `params` (temperature, top_k, top_p) with `rng`.
int32_t sample_token(const float* logits, int64_t V, const SamplingParams& params, std::mt19937_64& rng);

// The TokenLogprob of `token` under logits (V) with `top_n` alternatives.
TokenLogprob token_logprob(const float* logits, int64_t V, int32_t token, int64_t top_n);

}  // namespace stepwise
