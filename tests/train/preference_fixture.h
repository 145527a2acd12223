// Shared by test_dpo and test_rm: a small slice of the committed corpus (SFT conversations and preference pairs), a
// tokenizer trained on it, a tiny dense + MoE model, recipes, a tiny SFT checkpoint made through the real binary, and
// helpers that run `stepwise train` and read metrics. Each test executable uses its own temporary directory.
#pragma once
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "ckpt/checkpoint.h"
#include "data/loaders.h"
#include "data/tokenizer.h"
#include "model/step3_model.h"
#include "train/metrics.h"

namespace stepwise::test {

inline const fs::path kSource = STEPWISE_SOURCE_DIR;

struct CommandResult {
  int status = -1;   // exit status
  std::string output;
};

inline CommandResult run_command(const std::string& cmd) {
  CommandResult r;
  FILE* p = popen((cmd + " 2>&1").c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int raw = pclose(p);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return r;
}

// The first `lines` lines of a committed corpus file.
inline std::string corpus_head(const std::string& name, int lines) {
  const std::string all = read_file(kSource / "data/medical-zh" / name);
  size_t pos = 0;
  for (int i = 0; i < lines; ++i) pos = all.find('\n', pos) + 1;
  return all.substr(0, pos);
}

struct PreferenceFixture {
  fs::path dir;
  fs::path sft_checkpoint;

  explicit PreferenceFixture(const std::string& name, int preference_pairs)
      : dir(fs::temp_directory_path() / name) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    write_file_atomic(dir / "sft.jsonl", corpus_head("sft.jsonl", 400));
    write_file_atomic(dir / "preference.jsonl", corpus_head("preference.jsonl", preference_pairs));
    TokenizerTrainOptions o;
    o.inputs = {dir / "sft.jsonl", dir / "preference.jsonl"};
    o.vocab_size = 2000;
    Tokenizer::train(o, dir / "tok");
    write_file_atomic(dir / "model.yaml",
                      "hidden_size: 32\nnum_hidden_layers: 2\nnum_attention_heads: 2\nnum_attention_groups: 1\n"
                      "head_dim: 16\nshare_q_dim: 24\nintermediate_size: 64\nmoe_layers_enum: \"1\"\n"
                      "moe_num_experts: 4\nmoe_top_k: 2\nmoe_intermediate_size: 32\nshare_expert_dim: 32\n"
                      "vocab_size: 2000\nrope_theta: 10000\nmax_position_embedding: 512\n");
    write_file_atomic(dir / "sft.yaml", recipe("sft", "sft.jsonl", "") +
                                            "train:\n  micro_batch: 8\n  max_steps: 20\n  warmup_steps: 2\n"
                                            "  lr: 3.0e-3\n  eval_every: 20\noutput:\n  save_every: 20\n");
    const CommandResult r = train(dir / "sft.yaml", {"output.dir=" + (dir / "sft").string()});
    if (r.status != 0) throw std::runtime_error("making the SFT checkpoint failed:\n" + r.output);
    sft_checkpoint = dir / "sft" / "checkpoint-20";
  }

  // Recipe text of a stage over a data file of the fixture; `extra` is appended (more top-level sections).
  std::string recipe(const std::string& stage, const std::string& data, const std::string& init_from) const {
    std::string text = "stage: " + stage + "\nmodel: " + (dir / "model.yaml").string() + "\nresume: none\n";
    if (!init_from.empty()) text += "init_from: " + init_from + "\n";
    text += "data:\n  train: " + (dir / data).string() + "\n  tokenizer: " + (dir / "tok").string() +
            "\n  cache_dir: " + (dir / "cache").string() + "\n  seq_len: 96\n  eval_samples: 32\n";
    return text;
  }

  static CommandResult train(const fs::path& recipe, const std::vector<std::string>& overrides) {
    std::string cmd = std::string(STEPWISE_BINARY) + " train " + recipe.string();
    for (const auto& o : overrides) cmd += " '" + o + "'";
    return run_command(cmd);
  }
};

// Values of `key` in the records of a run's metrics.jsonl that have it.
inline std::vector<double> metric(const fs::path& run, const std::string& key) {
  std::vector<double> out;
  for (const auto& r : read_metrics(run / "metrics.jsonl"))
    if (r.contains(key)) out.push_back(r[key].get<double>());
  return out;
}

// In-process toy data: tiny model config and hand-made preference examples over a 23-token vocabulary.
inline Step3Config toy_config() {
  return Step3Config::from_yaml_string(
      "{hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2, head_dim: 8, share_q_dim: 12,"
      " intermediate_size: 20, moe_layers_enum: '1', moe_num_experts: 4, moe_top_k: 2, moe_intermediate_size: 8,"
      " share_expert_dim: 6, vocab_size: 23, rope_theta: 10000}",
      "toy");
}

// Random values large enough that every nonlinearity matters: matrices U(-a, a), norm weights U(1 - a, 1 + a).
template <class T>
void randomize(ParamTable<T>& t, uint64_t seed, double a = 0.4) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(-a, a);
  for (const ParamSpec& s : t.specs())
    for (int64_t i = 0; i < s.count; ++i) t.value(s)[i] = static_cast<T>(s.init == ParamInit::ones ? 1.0 + u(rng) : u(rng));
}

// Prompts of random tokens in [1, 23); replies of random lengths (chosen from `chosen_tokens`, rejected from
// `rejected_tokens`, both ending with token 2 as <|end_of_turn|>).
inline std::vector<PreferenceExample> toy_examples(int n, uint64_t seed, std::vector<int32_t> chosen_tokens = {},
                                                   std::vector<int32_t> rejected_tokens = {}) {
  std::mt19937_64 rng(seed);
  auto pick = [&](const std::vector<int32_t>& from) {
    return from.empty() ? static_cast<int32_t>(1 + rng() % 22) : from[rng() % from.size()];
  };
  std::vector<PreferenceExample> out;
  for (int i = 0; i < n; ++i) {
    PreferenceExample e;
    e.sample = i;
    for (int k = 0, len = 2 + int(rng() % 3); k < len; ++k) e.prompt.push_back(pick({}));
    for (int k = 0, len = 2 + int(rng() % 4); k < len; ++k) e.chosen.push_back(pick(chosen_tokens));
    for (int k = 0, len = 2 + int(rng() % 4); k < len; ++k) e.rejected.push_back(pick(rejected_tokens));
    e.chosen.push_back(2);
    e.rejected.push_back(2);
    out.push_back(std::move(e));
  }
  return out;
}

}  // namespace stepwise::test
