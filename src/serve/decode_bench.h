// Decode benchmark over the real engine: for each batch size and micro-batch count, B concurrent greedy requests of
// a fixed prompt length generate a fixed number of tokens (end of turn ignored); reports generated tokens/s and the
// per-request TPOT = (e2e - TTFT) / (n - 1) percentiles. Used by `stepwise bench decode`.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "serve/engine.h"

namespace stepwise {

struct DecodeBenchOptions {
  EngineOptions engine;                    // model_dir, transport, kv sizes ...; micro_batches is overridden
  std::vector<int64_t> batch_sizes = {1, 4, 16};
  std::vector<int64_t> micro_batches = {1, 3};
  int64_t prompt_tokens = 32;
  int64_t gen_tokens = 32;
};

struct DecodeBenchRow {
  int64_t batch = 0, micro_batches = 0;
  double seconds = 0, tokens_per_second = 0;
  double tpot_p50 = 0, tpot_p90 = 0, tpot_p99 = 0, ttft_p50 = 0;   // seconds
  double attn_wait_seconds = 0, ffn_wait_seconds = 0;              // summed over layers
};

std::vector<DecodeBenchRow> run_decode_bench(const DecodeBenchOptions& options);

// Percentile p in [0, 100] of `values` (nearest rank); 0 for an empty list.
double percentile(std::vector<double> values, double p);

}  // namespace stepwise
