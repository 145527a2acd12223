// The in-process eval backend: a serve Engine loaded from a checkpoint directory. Tasks become GenerationRequests
// (greedy; scoring through SamplingParams::prompt_logprobs with max_tokens = 1, the engine's minimum), at most
// `concurrency` in flight so that the engine batches them; replies are collected from the engine's callbacks.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "eval/runner_backend.h"
#include "serve/engine.h"

namespace stepwise::eval {

// The token ids the engine receives for a prompt: chat -> render_prompt of one user turn (ends with <|assistant|>);
// plain -> the text encoded literally (special-token strings stay text).
std::vector<int32_t> tokenize_prompt(const Tokenizer& tokenizer, const EvalPrompt& prompt);

// The token ids of context + continuation as scored: chat -> render_prompt(context) followed by the continuation
// encoded literally (nothing merges across <|assistant|>); plain -> (context text + continuation) encoded literally.
std::vector<int32_t> tokenize_scored(const Tokenizer& tokenizer, const EvalPrompt& context,
                                     const std::string& continuation);

class EngineBackend : public EvalBackend {
 public:
  // Loads the engine from options.model_dir; its max_running / max_queue are raised to `concurrency` when lower.
  EngineBackend(EngineOptions options, int64_t concurrency);
  ~EngineBackend() override;

  std::string model_label() const override;
  json settings() const override;
  std::vector<std::string> generate(const std::vector<GenerateTask>& tasks, const TaskDone& on_done) override;
  std::vector<OptionLogProb> score(const std::vector<ScoreTask>& tasks, const TaskDone& on_done) override;

  const Tokenizer& tokenizer() const;
  int64_t max_model_len() const;

 private:
  struct Reply;
  std::vector<Reply> run(std::vector<GenerationRequest> requests, const TaskDone& on_done);

  EngineOptions options_;
  int64_t concurrency_;
  std::unique_ptr<Engine> engine_;
};

}  // namespace stepwise::eval
