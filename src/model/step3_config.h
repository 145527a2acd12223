// Step3Config: the Step3TextConfig keys (REFERENCE.md) read from a model YAML (recipes/models/*.yaml) or an HF
// config.json, validated (unknown key = error with the closest valid key; missing/invalid values name key and file),
// and written back as config.json. Holds no weights and knows nothing about training.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace stepwise {

struct Step3Config {
  int64_t hidden_size = 0;             // d
  int64_t num_hidden_layers = 0;       // L
  int64_t num_attention_heads = 0;     // H query heads
  int64_t num_attention_groups = 1;    // K/V heads; MFA uses exactly one shared K and V head
  int64_t head_dim = 0;                // D (even: rotate-half RoPE)
  int64_t share_q_dim = 0;             // Q, rank of the factorised query
  int64_t intermediate_size = 0;       // dense FFN width (0 allowed when every layer is MoE)
  std::string moe_layers_enum;         // comma-separated MoE layer indices, "" = dense model
  int64_t moe_num_experts = 0;         // E routed experts
  int64_t moe_top_k = 0;               // K experts per token
  int64_t moe_intermediate_size = 0;   // per-expert FFN width
  int64_t share_expert_dim = 0;        // shared (always-on) expert FFN width
  bool norm_expert_weight = false;     // renormalise the top-k weights to sum 1
  int64_t vocab_size = 0;              // V
  double rms_norm_eps = 1e-5;
  double rope_theta = 500000.0;
  int64_t max_position_embedding = 65536;

  // Parsed moe_layers_enum, sorted ascending; throws Error on a malformed list.
  std::vector<int64_t> moe_layers() const;
  // Per layer: true when the layer's FFN is MoE. Size num_hidden_layers.
  std::vector<bool> moe_layer_mask() const;
  int64_t num_moe_layers() const { return static_cast<int64_t>(moe_layers().size()); }

  // Throws Error("<source>: <key> ...") for any value out of range or inconsistent.
  void validate(const std::string& source) const;

  // config.json text (Step3TextConfig keys + "architectures", "model_type"), pretty-printed.
  std::string to_json() const;
  void save_json(const std::filesystem::path& path) const;   // atomic write

  // Readers: every key of the file must be a Step3TextConfig key (JSON also tolerates HF metadata keys such as
  // "architectures", "torch_dtype"; a nested "text_config" object is read when present). The result is validated.
  static Step3Config from_yaml_string(const std::string& text, const std::string& source);
  static Step3Config from_json_string(const std::string& text, const std::string& source);
  // By extension: .yaml/.yml or .json; a directory means DIR/config.json (a checkpoint).
  static Step3Config load(const std::filesystem::path& path);

  // Every valid key, in config.json order.
  static const std::vector<std::string>& key_names();
};


}  // namespace stepwise
