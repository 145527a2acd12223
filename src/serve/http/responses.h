// OpenAI-shaped response bodies and Server-Sent-Events framing, built from the engine's events. Pure functions of
// their inputs: token strings come in through a TokenText function, so this file needs neither engine nor tokenizer.
#pragma once
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "serve/engine.h"

namespace stepwise::http {

using json = nlohmann::json;
using TokenText = std::function<std::string(int32_t)>;  // the surface text of one token id

// What every body of one request shares.
struct ResponseMeta {
  std::string id;        // "cmpl-..." / "chatcmpl-..."
  int64_t created = 0;   // unix seconds
  std::string model;
};

// The events of one request folded together (non-streamed responses).
struct GenerationResult {
  std::vector<TokenLogprob> prompt_logprobs;
  std::vector<TokenLogprob> tokens;
  std::string text;
  std::string finish_reason;
  std::string error;
  int64_t prompt_tokens = 0, completion_tokens = 0;
  bool finished = false;

  void add(const GenerationEvent& event);
};

// A token's piece as text: "▁" (U+2581) becomes a space and byte pieces "<0xE4>" the raw byte.
std::string token_surface(std::string_view piece);

// JSON text; invalid UTF-8 (a lone byte token) becomes U+FFFD instead of throwing.
std::string dump_json(const json& value);

// "data: <json>\n\n" and the terminating "data: [DONE]\n\n".
std::string sse_event(const json& value);
std::string sse_done();

// {"error": {"message", "type", "param", "code"}}; param and code are null when empty.
json error_body(const std::string& message, const std::string& type, const std::string& param, const std::string& code);

json usage_json(int64_t prompt_tokens, int64_t completion_tokens);

// Completions-style logprobs {"tokens", "token_logprobs", "top_logprobs", "text_offset"}, built incrementally so that
// streamed chunks continue each other's text offsets.
class CompletionLogprobs {
 public:
  CompletionLogprobs(TokenText token_text, int64_t text_offset) : token_text_(std::move(token_text)), offset_(text_offset) {}
  // The echoed prompt: its first token has null logprobs, the others come from the engine's prompt_logprobs.
  json prompt(const std::vector<int32_t>& prompt_tokens, const std::vector<TokenLogprob>& prompt_logprobs);
  json generated(const std::vector<TokenLogprob>& tokens);
  // Concatenates b's arrays onto a's.
  static json join(json a, const json& b);

 private:
  void append(json& out, int32_t token, const TokenLogprob* logprob);
  TokenText token_text_;
  int64_t offset_;
};

// Chat-style logprobs {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}.
json chat_logprobs(const std::vector<TokenLogprob>& tokens, const TokenText& token_text);

// Non-streamed bodies (text already includes the echoed prompt when echo was asked; logprobs null when not asked).
json completion_body(const ResponseMeta& meta, const std::string& text, const json& logprobs,
                     const std::string& finish_reason, int64_t prompt_tokens, int64_t completion_tokens);
json chat_completion_body(const ResponseMeta& meta, const std::string& content, const json& logprobs,
                          const std::string& finish_reason, int64_t prompt_tokens, int64_t completion_tokens);

// Streamed chunks; an empty finish_reason is null (more chunks follow).
json completion_chunk(const ResponseMeta& meta, const std::string& text, const json& logprobs,
                      const std::string& finish_reason);
json chat_chunk(const ResponseMeta& meta, const json& delta, const json& logprobs, const std::string& finish_reason);
// The last chunk when stream_options.include_usage: empty choices and the usage.
json usage_chunk(const ResponseMeta& meta, const char* object, int64_t prompt_tokens, int64_t completion_tokens);

// GET /v1/models.
json models_body(const std::string& model, int64_t created, int64_t max_model_len);

}  // namespace stepwise::http
