// Typed requests of the OpenAI-compatible API: JSON bodies are parsed and validated here, once, before anything is
// posted to the engine. Pure functions of the body text (no tokenizer, no engine) so they can be fuzzed; checks that
// need the model (token ids in the vocabulary, prompt length against the context) happen in the server.
#pragma once
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "data/chat_template.h"
#include "serve/engine.h"

namespace stepwise::http {

// A client error in a request (HTTP 400): the message, and the body field at fault ("" when it is the whole body).
class RequestError : public std::invalid_argument {
 public:
  RequestError(const std::string& message, std::string param) : std::invalid_argument(message), param_(std::move(param)) {}
  const std::string& param() const { return param_; }

 private:
  std::string param_;
};

// POST /v1/completions.
struct CompletionRequest {
  std::optional<std::string> model;
  std::optional<std::string> prompt_text;   // "prompt": "text" (or ["text"])
  std::vector<int32_t> prompt_tokens;       // "prompt": [ids] (or [[ids]]); used when prompt_text is unset
  SamplingParams sampling;                  // max_tokens defaults to 16 as in OpenAI
  bool stream = false;
  bool include_usage = false;               // stream_options.include_usage
  bool echo = false;                        // the prompt (and with logprobs its token logprobs) precedes the output
  std::optional<int64_t> logprobs;          // completions-style: top-n alternatives per token (0..20)
};

// POST /v1/chat/completions.
struct ChatCompletionRequest {
  std::optional<std::string> model;
  Conversation messages;                    // rendered by the library's chat template in the server
  SamplingParams sampling;                  // max_tokens: see max_tokens below
  std::optional<int64_t> max_tokens;        // max_completion_tokens | max_tokens; unset: up to the context length
  bool stream = false;
  bool include_usage = false;
  bool logprobs = false;                    // chat-style logprobs of the reply's tokens
  int64_t top_logprobs = 0;                 // alternatives per token (0..20), needs logprobs
};

// POST /tokenize: {"prompt": "text"} (or {"messages": [...]}: the chat prompt as the server renders it).
struct TokenizeRequest {
  std::optional<std::string> prompt;
  Conversation messages;
};

// POST /detokenize: {"tokens": [ids]}.
struct DetokenizeRequest {
  std::vector<int32_t> tokens;
};

inline constexpr int64_t kMaxTopLogprobs = 20;
inline constexpr size_t kMaxStopStrings = 16;

// Each throws RequestError (HTTP 400) naming the field for malformed JSON, wrong types, out-of-range values and
// unsupported options (n != 1, best_of, penalties, logit_bias, tools).
CompletionRequest parse_completion_request(std::string_view body);
ChatCompletionRequest parse_chat_completion_request(std::string_view body);
TokenizeRequest parse_tokenize_request(std::string_view body);
DetokenizeRequest parse_detokenize_request(std::string_view body);

}  // namespace stepwise::http
