// Shared set-up of the eval runner tests: a tokenizer trained on the token fixtures and a tiny random-init Step-3
// checkpoint (layer 0 dense, layers 1-2 MoE) written once per process into a scratch directory removed at exit,
// small MCQ / QA benchmark files, and an independent greedy decoder over the model's contiguous KV cache.
#pragma once
#include <gtest/gtest.h>

#include <memory>

#include "ckpt/checkpoint.h"
#include "ckpt/model_io.h"
#include "core/error.h"
#include "data/tokenizer.h"
#include "eval/eval_fixtures.h"
#include "model/step3_model.h"
#include "serve/model_loader.h"

namespace stepwise::eval::testing {

struct RunnerFiles {
  fs::path root, tokenizer, checkpoint, mcq, qa;
};

inline void write_lines(const fs::path& path, const std::vector<json>& records) { jsonl_write(path, records); }

inline const RunnerFiles& runner_files() {
  static TempPath scratch("runner");  // removed at process exit
  static const RunnerFiles files = [] {
    RunnerFiles f;
    f.root = scratch.path();
    f.tokenizer = f.root / "tokenizer";
    f.checkpoint = f.root / "tiny-eval-model";
    f.mcq = f.root / "mcq.jsonl";
    f.qa = f.root / "qa.jsonl";
    fs::create_directories(f.root);

    TokenizerTrainOptions t;
    const fs::path fixtures = fs::path(STEPWISE_SOURCE_DIR) / "tests/data/fixtures/tokens";
    t.inputs = {fixtures / "pretrain.jsonl", fixtures / "sft.jsonl", fixtures / "preference.jsonl"};
    t.vocab_size = 2000;
    const Tokenizer tok = Tokenizer::train(t, f.tokenizer);

    const Step3Config cfg = Step3Config::from_yaml_string(
        cat("{hidden_size: 32, num_hidden_layers: 3, num_attention_heads: 4, head_dim: 8, share_q_dim: 16,"
            " intermediate_size: 48, moe_layers_enum: '1,2', moe_num_experts: 4, moe_top_k: 2,"
            " moe_intermediate_size: 16, share_expert_dim: 16, vocab_size: ",
            tok.vocab_size(), ", rope_theta: 10000, max_position_embedding: 1024}"),
        "tiny eval model");
    Step3Model<float> model(cfg, {}, false);
    model.params().init(11);
    CheckpointContents c;
    c.config = json::parse(cfg.to_json());
    c.model = model_tensors(model, false);
    c.tokenizer_dir = f.tokenizer;
    write_checkpoint_dir(f.checkpoint, c);

    // Six MCQ items over two subjects (one multi-choice), three QA items.
    std::vector<json> mcq = {cmb_record("q1", "内科", "A"), cmb_record("q2", "内科", "B"),
                             cmb_record("q3", "外科", "C"), cmb_record("q4", "外科", "D"),
                             cmb_record("q5", "内科", "E"), cmb_record("q6", "外科", "AB", "多项选择题")};
    mcq[1]["question"] = "高血压最常见的并发症是";
    mcq[2]["question"] = "糖尿病患者出现口渴、多尿，应首先检查";
    mcq[3]["option"] = {{"A", "发热"}, {"B", "咳嗽"}, {"C", "头痛"}, {"D", "腹泻"}};
    write_lines(f.mcq, mcq);
    write_lines(f.qa, {{{"id", "a1"}, {"question", "高血压的常见症状有哪些？"}, {"answer", "头痛、头晕、心悸。"}},
                       {{"id", "a2"}, {"question", "慢性胃炎怎么治疗？"}, {"answer", "根除幽门螺杆菌，规律饮食。"}},
                       {{"id", "a3"}, {"question", "糖尿病"}, {"answer", "血糖升高的代谢性疾病。"}}});
    return f;
  }();
  return files;
}

// The checkpoint loaded as the engine loads it (same weights and tokenizer), once per process.
inline ServingModel& runner_model() {
  static ServingModel served = load_serving_model(runner_files().checkpoint);
  return served;
}

// Greedy decoding with the model's own contiguous KV cache, stopping after the end-of-turn token (not included).
inline std::vector<int32_t> direct_greedy(Step3Model<float>& model, const std::vector<int32_t>& prompt,
                                          int64_t max_tokens, int32_t eot) {
  KvCache<float> cache = model.new_cache();
  std::vector<float> logits = model.infer(cache, prompt.data(), static_cast<int64_t>(prompt.size()));
  const int64_t V = model.config().vocab_size;
  std::vector<int32_t> out;
  for (int64_t step = 0; step < max_tokens; ++step) {
    int32_t best = 0;
    for (int64_t v = 1; v < V; ++v)
      if (logits[static_cast<size_t>(v)] > logits[static_cast<size_t>(best)]) best = static_cast<int32_t>(v);
    if (best == eot) break;
    out.push_back(best);
    logits = model.infer(cache, &best, 1);
  }
  return out;
}

// log p(full[i] | full[..i]) summed over i >= start, by one training forward over the sequence.
inline double direct_logprob(Step3Model<float>& model, const std::vector<int32_t>& full, size_t start) {
  const int64_t T = static_cast<int64_t>(full.size()) - 1;
  std::vector<int32_t> tokens(full.begin(), full.end() - 1), targets(static_cast<size_t>(T), -100), pos;
  for (int64_t t = 0; t < T; ++t) {
    pos.push_back(static_cast<int32_t>(t));
    if (static_cast<size_t>(t) + 1 >= start) targets[static_cast<size_t>(t)] = full[static_cast<size_t>(t) + 1];
  }
  TrainBatch batch;
  batch.tokens = tokens.data();
  batch.targets = targets.data();
  batch.pos = pos.data();
  batch.B = 1;
  batch.T = T;
  model.forward(batch);
  double sum = 0.0;
  for (double lp : model.token_logprobs()) sum += lp;
  return sum;
}

}  // namespace stepwise::eval::testing
