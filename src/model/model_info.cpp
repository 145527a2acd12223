// Parameter, FLOP and KV-cache arithmetic over the Step-3 parameter list.
#include "model/model_info.h"

#include <cstdio>

#include "core/error.h"
#include "model/param_table.h"

namespace stepwise {

ModelInfo compute_model_info(const Step3Config& cfg, int64_t seq) {
  ModelInfo info;
  info.seq = seq;
  const double active_fraction = cfg.moe_num_experts > 0
                                     ? static_cast<double>(cfg.moe_top_k) / static_cast<double>(cfg.moe_num_experts)
                                     : 0.0;
  for (const ParamSpec& s : step3_param_specs(cfg)) {
    info.total_params += s.count;
    if (s.routed_expert) {
      info.routed_expert_params += s.count;
      // every expert of a tensor has the same size: count / E per expert, top_k of them active
      info.active_params += static_cast<int64_t>(static_cast<double>(s.count) * active_fraction + 0.5);
    } else {
      info.active_params += s.count;
    }
    if (s.name == "model.embed_tokens.weight") info.embedding_params = s.count;
    if (s.name == "lm_head.weight") info.lm_head_params = s.count;
  }
  info.active_non_embedding = info.active_params - info.embedding_params - info.lm_head_params;
  const double L = static_cast<double>(cfg.num_hidden_layers);
  info.attention_flops = 6.0 * L * static_cast<double>(cfg.num_attention_heads) *
                         static_cast<double>(cfg.head_dim) * static_cast<double>(seq);
  info.train_flops_per_token = 6.0 * static_cast<double>(info.active_non_embedding) +
                               6.0 * static_cast<double>(info.lm_head_params) + info.attention_flops;
  info.kv_bytes_per_token_bf16 = 2 * cfg.head_dim * cfg.num_hidden_layers * 2;
  info.kv_bytes_per_token_fp8 = 2 * cfg.head_dim * cfg.num_hidden_layers * 1;
  return info;
}

static std::string human(double n) {
  char buf[64];
  if (n >= 1e12) std::snprintf(buf, sizeof buf, "%.2fT", n / 1e12);
  else if (n >= 1e9) std::snprintf(buf, sizeof buf, "%.2fB", n / 1e9);
  else if (n >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM", n / 1e6);
  else if (n >= 1e3) std::snprintf(buf, sizeof buf, "%.2fK", n / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0f", n);
  return buf;
}

std::string format_model_info(const Step3Config& cfg, const ModelInfo& info) {
  const auto moe = cfg.moe_layers();
  std::string out;
  out += cat("layers                    ", cfg.num_hidden_layers, " (", cfg.num_hidden_layers - (int64_t)moe.size(),
             " dense, ", moe.size(), " MoE: ", cfg.moe_num_experts, " experts, top-", cfg.moe_top_k, ")\n");
  out += cat("attention                 MFA: ", cfg.num_attention_heads, " heads x ", cfg.head_dim,
             ", share_q_dim ", cfg.share_q_dim, ", 1 shared K/V head\n");
  out += cat("total parameters          ", info.total_params, " (", human((double)info.total_params), ")\n");
  out += cat("active parameters/token   ", info.active_params, " (", human((double)info.active_params),
             "; embeddings and lm_head counted; routed experts x top_k/E)\n");
  out += cat("  embeddings              ", info.embedding_params, " (", human((double)info.embedding_params), ")\n");
  out += cat("  lm_head                 ", info.lm_head_params, " (", human((double)info.lm_head_params), ")\n");
  out += cat("  active non-embedding    ", info.active_non_embedding, " (", human((double)info.active_non_embedding),
             ")\n");
  out += cat("training FLOPs/token      ", human(info.train_flops_per_token), " at seq ", info.seq,
             "  = 6 x active non-embedding + 6 x lm_head + 6 x layers x heads x head_dim x seq (attention ",
             human(info.attention_flops), ")\n");
  out += cat("KV cache bytes/token      ", info.kv_bytes_per_token_bf16, " (bf16), ", info.kv_bytes_per_token_fp8,
             " (fp8)  = 2 x head_dim x layers x bytes\n");
  return out;
}

}  // namespace stepwise
