// Shared set-up of the serve tests: a tokenizer trained once on the token fixtures, a tiny random Step-3 model (dense
// + MoE layers) saved as a real training checkpoint in a scratch directory, a reference greedy decoder that
// recomputes the whole sequence each step, and a helper that runs requests through an Engine and collects events.
#pragma once
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <condition_variable>
#include <map>
#include <mutex>
#include <random>

#include "ckpt/checkpoint.h"
#include "core/error.h"
#include "data/tokenizer.h"
#include "model/step3_model.h"
#include "serve/engine.h"
#include "serve/model_loader.h"

namespace stepwise::test {

inline fs::path serve_scratch(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / cat("stepwise_serve_", ::getpid()) / name;
  fs::create_directories(dir);
  return dir;
}

inline const fs::path& tokenizer_dir() {
  static const fs::path dir = [] {
    const fs::path d = serve_scratch("tokenizer");
    TokenizerTrainOptions o;
    const fs::path fx = fs::path(STEPWISE_SOURCE_DIR) / "tests/data/fixtures/tokens";
    o.inputs = {fx / "pretrain.jsonl", fx / "sft.jsonl", fx / "preference.jsonl"};
    o.vocab_size = 2000;   // the fixtures support ~1000 pieces (hard_vocab_limit off)
    Tokenizer::train(o, d);
    return d;
  }();
  return dir;
}

// A tiny model over the fixture tokenizer's vocabulary: layer 0 dense, layers 1-2 MoE (4 experts, top-2).
inline Step3Config tiny_serve_config(int64_t vocab) {
  Step3Config c = Step3Config::from_yaml_string(
      cat("{hidden_size: 32, num_hidden_layers: 3, num_attention_heads: 4, head_dim: 8, share_q_dim: 16,"
          " intermediate_size: 48, moe_layers_enum: '1,2', moe_num_experts: 4, moe_top_k: 2,"
          " moe_intermediate_size: 16, share_expert_dim: 16, vocab_size: ",
          vocab, ", rope_theta: 10000, max_position_embedding: 512}"),
      "tiny serve");
  return c;
}

// Writes the checkpoint once per process: values U(-0.3, 0.3) (norm weights 1 +- 0.3) so that logits are peaked.
inline const fs::path& tiny_checkpoint() {
  static const fs::path dir = [] {
    const Tokenizer tok = Tokenizer::load(tokenizer_dir());
    const Step3Config cfg = tiny_serve_config(tok.vocab_size());
    Step3Model<float> model(cfg, {}, false);
    std::mt19937_64 rng(7);
    std::uniform_real_distribution<double> u(-0.3, 0.3);
    ParamTable<float>& t = model.params();
    for (const ParamSpec& s : t.specs())
      for (int64_t i = 0; i < s.count; ++i)
        t.value(s)[i] = static_cast<float>(s.init == ParamInit::ones ? 1.0 + u(rng) : u(rng));
    CheckpointContents c;
    c.config = nlohmann::json::parse(cfg.to_json());
    for (const ParamSpec& s : t.specs()) c.model.push_back({s.name, DType::f32, s.shape, t.value(s)});
    c.tokenizer_dir = tokenizer_dir();
    const fs::path d = serve_scratch("tiny_ckpt") / "tiny-step3";
    write_checkpoint_dir(d, c);
    return d;
  }();
  return dir;
}

inline EngineOptions tiny_options() {
  EngineOptions o;
  o.model_dir = tiny_checkpoint();
  o.kv_block_size = 4;
  o.kv_blocks = 256;
  o.max_running = 64;
  o.prefill_chunk = 5;
  o.max_model_len = 256;
  o.micro_batches = 3;
  return o;
}

// Greedy decoding by recomputing the whole sequence with the contiguous-cache inference path every step.
inline std::vector<int32_t> reference_greedy(Step3Model<float>& model, const std::vector<int32_t>& prompt,
                                             int64_t max_tokens) {
  std::vector<int32_t> seq = prompt, out;
  const int64_t V = model.config().vocab_size;
  for (int64_t t = 0; t < max_tokens; ++t) {
    KvCache<float> cache = model.new_cache();
    const std::vector<float> logits = model.infer(cache, seq.data(), static_cast<int64_t>(seq.size()));
    int32_t best = 0;
    for (int64_t v = 1; v < V; ++v)
      if (logits[static_cast<size_t>(v)] > logits[static_cast<size_t>(best)]) best = static_cast<int32_t>(v);
    seq.push_back(best);
    out.push_back(best);
  }
  return out;
}

struct Collected {
  std::vector<int32_t> tokens;
  std::vector<TokenLogprob> token_logprobs;
  std::vector<TokenLogprob> prompt_logprobs;
  std::string text, finish_reason;
  int64_t events = 0;
  bool finished = false;
};

// Collects events of many requests; wait() blocks until every submitted request finished.
class Collector {
 public:
  EventCallback callback(size_t slot) {
    return [this, slot](const GenerationEvent& ev) {
      std::lock_guard<std::mutex> lock(mu_);
      Collected& c = results_[slot];
      ++c.events;
      for (const TokenLogprob& t : ev.tokens) {
        c.tokens.push_back(t.token);
        c.token_logprobs.push_back(t);
      }
      if (!ev.prompt_logprobs.empty()) c.prompt_logprobs = ev.prompt_logprobs;
      c.text += ev.text;
      if (ev.finished) {
        c.finished = true;
        c.finish_reason = ev.finish_reason;
        ++finished_;
        cv_.notify_all();
      }
      return true;
    };
  }
  void wait(size_t count) {
    std::unique_lock<std::mutex> lock(mu_);
    ASSERT_TRUE(cv_.wait_for(lock, std::chrono::seconds(60), [&] { return finished_ >= count; }))
        << "requests did not finish";
  }
  Collected get(size_t slot) {
    std::lock_guard<std::mutex> lock(mu_);
    return results_[slot];
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<size_t, Collected> results_;
  size_t finished_ = 0;
};

inline std::vector<Collected> run_all(Engine& engine, const std::vector<GenerationRequest>& requests) {
  Collector col;
  for (size_t i = 0; i < requests.size(); ++i) engine.submit(requests[i], col.callback(i));
  col.wait(requests.size());
  std::vector<Collected> out;
  for (size_t i = 0; i < requests.size(); ++i) out.push_back(col.get(i));
  return out;
}

// Deterministic prompts of varied length over ordinary (non-special) tokens.
inline std::vector<int32_t> test_prompt(const Tokenizer& tok, size_t index) {
  static const char* texts[] = {"患者出现发热、咳嗽三天，体温38.5度。", "高血压的常见症状有哪些？", "糖尿病",
                                "请解释一下慢性胃炎的治疗方法以及饮食注意事项。", "头痛"};
  std::vector<int32_t> ids = tok.encode(texts[index % 5]);
  for (size_t i = 0; i < index / 5; ++i) ids.push_back(ids[i % ids.size()]);
  return ids;
}

inline GenerationRequest greedy_request(std::vector<int32_t> prompt, int64_t max_tokens) {
  GenerationRequest r;
  r.prompt = std::move(prompt);
  r.sampling.temperature = 0;
  r.sampling.max_tokens = max_tokens;
  r.sampling.stop_at_eot = false;
  return r;
}

}  // namespace stepwise::test
