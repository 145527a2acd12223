// The one small interface `stepwise eval` decodes through: greedy generation of prompts and log-probability scoring of
// continuations, run over a whole batch of tasks with the backend's own concurrency. Two implementations: the
// in-process engine (runner_engine.h) and an OpenAI-compatible HTTP server (runner_http.h).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/jsonl.h"
#include "eval/scoring.h"

namespace stepwise::eval {

// How a prompt text reaches the model: `chat` renders it as one user turn of the chat template followed by
// <|assistant|> (instruction-tuned models); `plain` sends the text as it is (base models).
enum class PromptStyle { chat, plain };
const char* prompt_style_name(PromptStyle style);               // "chat" / "plain"
PromptStyle parse_prompt_style(const std::string& name);        // Error naming the value otherwise

struct EvalPrompt {
  std::string text;
  PromptStyle style = PromptStyle::chat;
};

// One greedy generation: the reply to `prompt`, at most `max_tokens` tokens, ended early by the end-of-turn token.
struct GenerateTask {
  EvalPrompt prompt;
  int64_t max_tokens = 64;
};

// One scoring: log p(continuation | context) summed over the continuation's tokens. The continuation is appended to
// the context as text; its tokens are those of tokenize(context + continuation) past the longest common prefix with
// tokenize(context), so that both backends agree even when a token straddles the boundary.
struct ScoreTask {
  EvalPrompt context;
  std::string continuation;  // non-empty
};

// Called once per finished task, never concurrently (backends serialise the calls).
using TaskDone = std::function<void()>;

class EvalBackend {
 public:
  virtual ~EvalBackend() = default;
  virtual std::string model_label() const = 0;  // the default model name in reports
  virtual json settings() const = 0;            // what the report's meta records about the backend
  // Replies in task order. Throws Error when a request fails (with the task's index in the message).
  virtual std::vector<std::string> generate(const std::vector<GenerateTask>& tasks, const TaskDone& on_done) = 0;
  // Log-probs (and token counts) in task order.
  virtual std::vector<OptionLogProb> score(const std::vector<ScoreTask>& tasks, const TaskDone& on_done) = 0;
};

// The continuation's log-prob from the tokens of the full text (context + continuation) with their log-probs
// (full_logprobs[i] = log p(full[i] | full[..i]); entry 0 unused) and the tokens of the context alone. The
// continuation starts after the longest common prefix (at least 1 token); Error when no token is left for it.
template <class Token>
OptionLogProb continuation_logprob(const std::vector<Token>& context, const std::vector<Token>& full,
                                   const std::vector<double>& full_logprobs, const std::string& what);

}  // namespace stepwise::eval
