// Shared fixtures of the convert tests: a small Step-3 config with edge-block shapes (hidden 136 > 128), and a real
// training checkpoint written from a seeded ParamTable (plus expert biases, optimizer state and tokenizer files).
#pragma once
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstring>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "ckpt/checkpoint.h"
#include "ckpt/convert_load.h"
#include "core/error.h"
#include "core/fs.h"
#include "model/param_table.h"
#include "model/step3_config.h"

namespace stepwise::test {

// 3 layers: 0 dense, 1-2 MoE (4 experts); hidden 136 and moe width 40 give partial 128-blocks.
inline Step3Config small_config() {
  Step3Config c;
  c.hidden_size = 136;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 2;
  c.head_dim = 16;
  c.share_q_dim = 24;
  c.intermediate_size = 48;
  c.moe_layers_enum = "1,2";
  c.moe_num_experts = 4;
  c.moe_top_k = 2;
  c.moe_intermediate_size = 40;
  c.share_expert_dim = 32;
  c.vocab_size = 150;
  c.validate("small_config");
  return c;
}

inline fs::path fresh_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("stepwise_convert_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// A seeded model: the ParamTable values plus an expert bias (E) per MoE layer.
struct SmallModel {
  Step3Config cfg = small_config();
  ParamTable<float> table{cfg, false};
  std::map<std::string, std::vector<float>> biases;   // name -> (E)
  explicit SmallModel(uint64_t seed) {
    table.init(seed);
    for (const ParamSpec& s : expert_bias_specs(cfg)) {
      std::vector<float> b(static_cast<size_t>(s.count));
      for (size_t e = 0; e < b.size(); ++e) b[e] = 0.01f * static_cast<float>(e) - 0.013f * static_cast<float>(s.layer);
      biases[s.name] = b;
    }
  }
};

// Writes `m` as a training checkpoint at `dir` (model.safetensors, optimizer.safetensors, trainer_state.json,
// config.json, generation_config.json, tokenizer.model/json). `edit` may change the tensor list before writing.
inline void write_training_checkpoint(const fs::path& dir, const SmallModel& m,
                                      const std::function<void(std::vector<TensorToWrite>&)>& edit = {}) {
  const fs::path tok = dir.parent_path() / (dir.filename().string() + "_tokenizer_src");
  fs::create_directories(tok);
  write_file_atomic(tok / "tokenizer.model", std::string("sentencepiece-model-bytes\0\x01\x02", 28));
  write_file_atomic(tok / "tokenizer.json", "{\"model\": {\"type\": \"Unigram\"}}\n");
  CheckpointContents c;
  c.config = nlohmann::json::parse(m.cfg.to_json());
  c.generation_config = {{"eos_token_id", 2}, {"temperature", 0.7}};
  for (const ParamSpec& s : m.table.specs()) c.model.push_back({s.name, DType::f32, s.shape, m.table.value(s)});
  for (const auto& [name, b] : m.biases)
    c.model.push_back({name, DType::f32, {static_cast<int64_t>(b.size())}, b.data()});
  c.optimizer = {{"step_scalar", DType::f32, {1}, m.biases.begin()->second.data()}};
  c.trainer_state = {{"step", 5}};
  c.tokenizer_dir = tok;
  if (edit) edit(c.model);
  write_checkpoint_dir(dir, c);
}

// Runs `f` and returns the stepwise::Error message it throws ("" when it throws nothing).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace stepwise::test
