// Decode benchmark over the real engine: for each batch size and micro-batch count, B concurrent greedy requests of
// a fixed prompt length generate a fixed number of tokens (end of turn ignored); reports generated tokens/s and the
// per-request TPOT = (e2e - TTFT) / (n - 1) percentiles. Used by `stepwise bench decode`. The model is loaded once and
// shared by every engine of the run; a model config instead of a checkpoint gives random weights (no tokenizer).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/fs.h"
#include "model/step3_config.h"
#include "serve/engine.h"

namespace stepwise {

struct DecodeBenchOptions {
  EngineOptions engine;                    // model_dir (a checkpoint directory, or a model config file: random
                                           // weights), device, dtype, transport, kv sizes ...; micro_batches is
                                           // overridden
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

// A checkpoint directory loads as the server loads it; a model config (.yaml / .yml / .json file) gives a model with
// random weights (ParamTable::init(seed)) and no tokenizer (the engine then streams token ids only).
std::shared_ptr<ServingModel> load_bench_model(const fs::path& path, uint64_t seed = 1);

// Bytes one decode step of `batch` sequences with `context` cached tokens each must read at least (GPU.md's memory
// roofline): every non-routed weight once (lm_head included, the embedding only for the batch's rows), the routed
// experts a batch is expected to touch under uniform routing (a fraction 1 - (1 - K/E)^batch of each MoE layer's),
// and the K and V of every cached token; element_bytes per value (2 for bf16).
double decode_step_roofline_bytes(const Step3Config& cfg, int64_t batch, int64_t context, int64_t element_bytes);

// Percentile p in [0, 100] of `values` (nearest rank); 0 for an empty list.
double percentile(std::vector<double> values, double p);

}  // namespace stepwise
