// OpenAI response bodies, streamed chunks and SSE framing (see responses.h). Field order and names follow the public
// OpenAI API so that unmodified clients (the openai Python package, curl scripts) read them.
#include "serve/http/responses.h"

#include <cctype>

namespace stepwise::http {

void GenerationResult::add(const GenerationEvent& event) {
  if (!event.prompt_logprobs.empty()) prompt_logprobs = event.prompt_logprobs;
  tokens.insert(tokens.end(), event.tokens.begin(), event.tokens.end());
  text += event.text;
  prompt_tokens = event.prompt_tokens;
  completion_tokens = event.completion_tokens;
  if (event.finished) {
    finished = true;
    finish_reason = event.finish_reason;
    error = event.error;
  }
}

std::string token_surface(std::string_view piece) {
  // Byte-fallback piece: exactly "<0xHH>".
  if (piece.size() == 6 && piece.substr(0, 3) == "<0x" && piece[5] == '>' && std::isxdigit(uint8_t(piece[3])) &&
      std::isxdigit(uint8_t(piece[4]))) {
    return std::string(1, char(std::stoi(std::string(piece.substr(3, 2)), nullptr, 16)));
  }
  static constexpr std::string_view kSpaceMarker = "\xE2\x96\x81";  // U+2581
  std::string text;
  text.reserve(piece.size());
  for (size_t i = 0; i < piece.size();) {
    if (piece.substr(i, kSpaceMarker.size()) == kSpaceMarker) {
      text += ' ';
      i += kSpaceMarker.size();
    } else {
      text += piece[i++];
    }
  }
  return text;
}

std::string dump_json(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

std::string sse_event(const json& value) { return "data: " + dump_json(value) + "\n\n"; }

std::string sse_done() { return "data: [DONE]\n\n"; }

json error_body(const std::string& message, const std::string& type, const std::string& param, const std::string& code) {
  return {{"error",
           {{"message", message},
            {"type", type},
            {"param", param.empty() ? json() : json(param)},
            {"code", code.empty() ? json() : json(code)}}}};
}

json usage_json(int64_t prompt_tokens, int64_t completion_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

namespace {

json empty_completion_logprobs() {
  return {{"tokens", json::array()}, {"token_logprobs", json::array()}, {"top_logprobs", json::array()},
          {"text_offset", json::array()}};
}

json bytes_of(const std::string& text) {
  json bytes = json::array();
  for (const char c : text) bytes.push_back(int(uint8_t(c)));
  return bytes;
}

}  // namespace

void CompletionLogprobs::append(json& out, int32_t token, const TokenLogprob* logprob) {
  const std::string text = token_text_(token);
  out["tokens"].push_back(text);
  out["text_offset"].push_back(offset_);
  offset_ += int64_t(text.size());
  if (!logprob) {
    out["token_logprobs"].push_back(nullptr);
    out["top_logprobs"].push_back(nullptr);
    return;
  }
  out["token_logprobs"].push_back(logprob->logprob);
  // OpenAI's top_logprobs is a map token text -> logprob; distinct ids with equal text keep the likelier one.
  json top = json::object();
  for (const auto& [id, value] : logprob->top) {
    const std::string alternative = token_text_(id);
    if (!top.contains(alternative)) top[alternative] = value;
  }
  out["top_logprobs"].push_back(std::move(top));
}

json CompletionLogprobs::prompt(const std::vector<int32_t>& prompt_tokens, const std::vector<TokenLogprob>& prompt_logprobs) {
  json out = empty_completion_logprobs();
  for (size_t i = 0; i < prompt_tokens.size(); ++i) {
    const TokenLogprob* logprob = (i >= 1 && i - 1 < prompt_logprobs.size()) ? &prompt_logprobs[i - 1] : nullptr;
    append(out, prompt_tokens[i], logprob);
  }
  return out;
}

json CompletionLogprobs::generated(const std::vector<TokenLogprob>& tokens) {
  json out = empty_completion_logprobs();
  for (const TokenLogprob& token : tokens) append(out, token.token, &token);
  return out;
}

json CompletionLogprobs::join(json a, const json& b) {
  for (const char* key : {"tokens", "token_logprobs", "top_logprobs", "text_offset"})
    for (const json& item : b.at(key)) a[key].push_back(item);
  return a;
}

json chat_logprobs(const std::vector<TokenLogprob>& tokens, const TokenText& token_text) {
  json content = json::array();
  for (const TokenLogprob& token : tokens) {
    const std::string text = token_text(token.token);
    json top = json::array();
    for (const auto& [id, value] : token.top) {
      const std::string alternative = token_text(id);
      top.push_back({{"token", alternative}, {"logprob", value}, {"bytes", bytes_of(alternative)}});
    }
    content.push_back({{"token", text}, {"logprob", token.logprob}, {"bytes", bytes_of(text)}, {"top_logprobs", top}});
  }
  return {{"content", content}};
}

namespace {

json finish_reason_json(const std::string& finish_reason) {
  return finish_reason.empty() ? json() : json(finish_reason);
}

json envelope(const ResponseMeta& meta, const char* object, json choices) {
  return {{"id", meta.id}, {"object", object}, {"created", meta.created}, {"model", meta.model}, {"choices", std::move(choices)}};
}

}  // namespace

json completion_body(const ResponseMeta& meta, const std::string& text, const json& logprobs,
                     const std::string& finish_reason, int64_t prompt_tokens, int64_t completion_tokens) {
  json choice = {{"index", 0}, {"text", text}, {"logprobs", logprobs}, {"finish_reason", finish_reason_json(finish_reason)}};
  json body = envelope(meta, "text_completion", json::array({choice}));
  body["usage"] = usage_json(prompt_tokens, completion_tokens);
  return body;
}

json chat_completion_body(const ResponseMeta& meta, const std::string& content, const json& logprobs,
                          const std::string& finish_reason, int64_t prompt_tokens, int64_t completion_tokens) {
  json choice = {{"index", 0},
                 {"message", {{"role", "assistant"}, {"content", content}}},
                 {"logprobs", logprobs},
                 {"finish_reason", finish_reason_json(finish_reason)}};
  json body = envelope(meta, "chat.completion", json::array({choice}));
  body["usage"] = usage_json(prompt_tokens, completion_tokens);
  return body;
}

json completion_chunk(const ResponseMeta& meta, const std::string& text, const json& logprobs,
                      const std::string& finish_reason) {
  json choice = {{"index", 0}, {"text", text}, {"logprobs", logprobs}, {"finish_reason", finish_reason_json(finish_reason)}};
  return envelope(meta, "text_completion", json::array({choice}));
}

json chat_chunk(const ResponseMeta& meta, const json& delta, const json& logprobs, const std::string& finish_reason) {
  json choice = {{"index", 0}, {"delta", delta}, {"logprobs", logprobs}, {"finish_reason", finish_reason_json(finish_reason)}};
  return envelope(meta, "chat.completion.chunk", json::array({choice}));
}

json usage_chunk(const ResponseMeta& meta, const char* object, int64_t prompt_tokens, int64_t completion_tokens) {
  json body = envelope(meta, object, json::array());
  body["usage"] = usage_json(prompt_tokens, completion_tokens);
  return body;
}

json models_body(const std::string& model, int64_t created, int64_t max_model_len) {
  json entry = {{"id", model}, {"object", "model"}, {"created", created}, {"owned_by", "stepwise"},
                {"max_model_len", max_model_len}};
  return {{"object", "list"}, {"data", json::array({entry})}};
}

}  // namespace stepwise::http
