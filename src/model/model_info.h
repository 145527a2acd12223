// Model arithmetic for `stepwise model info` and MFU: total and active parameters, training FLOPs per token and
// KV-cache bytes per token, all derived from the ParamTable's spec list (no weights are allocated).
#pragma once
#include <cstdint>
#include <string>

#include "model/step3_config.h"

namespace stepwise {

struct ModelInfo {
  int64_t total_params = 0;        // every tensor, embeddings and lm_head included
  int64_t active_params = 0;       // per token: non-routed tensors + top_k/E of each MoE layer's routed experts
                                   // (embeddings and lm_head included, as in Step-3's "38B active")
  int64_t embedding_params = 0;    // model.embed_tokens
  int64_t lm_head_params = 0;      // lm_head (untied)
  int64_t active_non_embedding = 0;   // active_params - embedding_params - lm_head_params
  int64_t routed_expert_params = 0;   // all routed experts (all layers)
  int64_t seq = 0;                 // the sequence length the attention FLOPs use
  double attention_flops = 0;      // 6 * layers * heads * head_dim * seq (causal: half of the 12 of full attention)
  double train_flops_per_token = 0;   // 6 * active_non_embedding + 6 * lm_head_params + attention_flops
  int64_t kv_bytes_per_token_bf16 = 0;   // 2 * head_dim * layers * 2 bytes
  int64_t kv_bytes_per_token_fp8 = 0;    // 2 * head_dim * layers * 1 byte
};

ModelInfo compute_model_info(const Step3Config& cfg, int64_t seq = 4096);

// Human-readable report (what `stepwise model info` prints), formulas stated.
std::string format_model_info(const Step3Config& cfg, const ModelInfo& info);

}  // namespace stepwise
