// CUDA sampling for decoding: per-row greedy argmax, or temperature / top-k / top-p sampling with a counter-based
// RNG (seed, row, step), over fp32 logits (S, V). Tokens are written to device memory.
#pragma once
#include "cuda/device.h"

namespace stepwise::cuda {

struct SampleParams {
  int32_t* tokens = nullptr;        // (S)     sampled token of each row
  const float* logits = nullptr;    // (S, V)
  const float* temperature = nullptr;  // (S)  0 = greedy
  const int32_t* top_k = nullptr;   // (S)     0 = all
  const float* top_p = nullptr;     // (S)     1 = all
  const uint64_t* seed = nullptr;   // (S)
  const int64_t* step = nullptr;    // (S)     decode step of each row (RNG counter)
  int64_t S = 0, V = 0;
};

void sample(const SampleParams& p, cudaStream_t stream = nullptr);

}  // namespace stepwise::cuda
