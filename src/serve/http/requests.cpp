// Parsing and validation of the API's request bodies into typed requests (see requests.h). Every rejection is a
// RequestError naming the field; nothing here touches the engine or the tokenizer.
#include "serve/http/requests.h"

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/strings.h"

namespace stepwise::http {
namespace {

using nlohmann::json;

[[noreturn]] void reject(const std::string& param, const std::string& message) { throw RequestError(message, param); }

json parse_body(std::string_view body) {
  json parsed;
  try {
    parsed = json::parse(body.begin(), body.end());
  } catch (const json::exception& e) {  // parse_error, and out_of_range for numbers like 1e309
    reject("", cat("malformed JSON body: ", e.what()));
  }
  if (!parsed.is_object()) reject("", cat("the request body must be a JSON object (got ", parsed.type_name(), ")"));
  return parsed;
}

// Unknown keys are errors (a misspelled option must not be silently ignored); the message suggests the closest key.
void check_keys(const json& object, const std::vector<std::string>& known, const std::string& where) {
  for (const auto& [key, value] : object.items()) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    const std::string suggestion = closest_match(key, known);
    const std::string path = where.empty() ? key : cat(where, ".", key);
    reject(path, cat("unrecognized field '", path, "'", suggestion.empty() ? "" : cat(" (did you mean '", suggestion, "'?)")));
  }
}

// The value of `key`, or nullptr when it is absent or null (OpenAI treats null as "use the default").
const json* field(const json& object, const std::string& key) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string got(const json& value) { return cat(" (got ", value.type_name(), ")"); }

bool read_bool(const json& value, const std::string& name) {
  if (!value.is_boolean()) reject(name, cat("'", name, "' must be a boolean", got(value)));
  return value.get<bool>();
}

int64_t read_int(const json& value, const std::string& name) {
  if (!value.is_number_integer()) reject(name, cat("'", name, "' must be an integer", got(value)));
  if (value.is_number_unsigned() && value.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
    reject(name, cat("'", name, "' is too large"));
  return value.get<int64_t>();
}

double read_number(const json& value, const std::string& name) {
  if (!value.is_number()) reject(name, cat("'", name, "' must be a number", got(value)));
  return value.get<double>();
}

std::string read_string(const json& value, const std::string& name) {
  if (!value.is_string()) reject(name, cat("'", name, "' must be a string", got(value)));
  return value.get<std::string>();
}

int32_t read_token_id(const json& value, const std::string& name) {
  const int64_t id = read_int(value, name);
  if (id < 0 || id > std::numeric_limits<int32_t>::max()) reject(name, cat("'", name, "' is not a token id: ", id));
  return int32_t(id);
}

std::vector<int32_t> read_token_ids(const json& array, const std::string& name) {
  std::vector<int32_t> ids;
  ids.reserve(array.size());
  for (size_t i = 0; i < array.size(); ++i) ids.push_back(read_token_id(array[i], cat(name, "[", i, "]")));
  return ids;
}

// "stop": a string or a list of strings, each non-empty.
std::vector<std::string> read_stop(const json& value) {
  std::vector<std::string> stops;
  if (value.is_string()) {
    stops.push_back(value.get<std::string>());
  } else if (value.is_array()) {
    if (value.size() > kMaxStopStrings) reject("stop", cat("'stop' has ", value.size(), " strings; at most ", kMaxStopStrings));
    for (size_t i = 0; i < value.size(); ++i) stops.push_back(read_string(value[i], cat("stop[", i, "]")));
  } else {
    reject("stop", cat("'stop' must be a string or a list of strings", got(value)));
  }
  for (const std::string& stop : stops)
    if (stop.empty()) reject("stop", "'stop' strings must not be empty");
  return stops;
}

// The sampling fields shared by both endpoints (max_tokens and logprobs are endpoint-specific).
void read_sampling(const json& body, SamplingParams& sampling) {
  if (const json* v = field(body, "temperature")) {
    sampling.temperature = read_number(*v, "temperature");
    if (!(sampling.temperature >= 0 && sampling.temperature <= 2))
      reject("temperature", cat("'temperature' must be in [0, 2] (got ", sampling.temperature, ")"));
  }
  if (const json* v = field(body, "top_p")) {
    sampling.top_p = read_number(*v, "top_p");
    if (!(sampling.top_p > 0 && sampling.top_p <= 1)) reject("top_p", cat("'top_p' must be in (0, 1] (got ", sampling.top_p, ")"));
  }
  if (const json* v = field(body, "top_k")) {
    const int64_t top_k = read_int(*v, "top_k");
    if (top_k < -1) reject("top_k", cat("'top_k' must be -1 (off), 0 (off) or positive (got ", top_k, ")"));
    sampling.top_k = std::max<int64_t>(top_k, 0);
  }
  if (const json* v = field(body, "seed")) sampling.seed = uint64_t(read_int(*v, "seed"));
  if (const json* v = field(body, "stop")) sampling.stop = read_stop(*v);
}

int64_t read_max_tokens(const json& value, const std::string& name, int64_t minimum) {
  const int64_t max_tokens = read_int(value, name);
  if (max_tokens < minimum) reject(name, cat("'", name, "' must be >= ", minimum, " (got ", max_tokens, ")"));
  return max_tokens;
}

int64_t read_top_n(const json& value, const std::string& name) {
  const int64_t n = read_int(value, name);
  if (n < 0 || n > kMaxTopLogprobs) reject(name, cat("'", name, "' must be in [0, ", kMaxTopLogprobs, "] (got ", n, ")"));
  return n;
}

// Options this server does not implement: accepted only at their neutral value, so a client never gets silently
// different semantics.
void reject_unsupported(const json& body) {
  if (const json* v = field(body, "n"); v && read_int(*v, "n") != 1) reject("n", "only n = 1 is supported");
  if (const json* v = field(body, "best_of"); v && read_int(*v, "best_of") != 1) reject("best_of", "only best_of = 1 is supported");
  for (const char* penalty : {"presence_penalty", "frequency_penalty"})
    if (const json* v = field(body, penalty); v && read_number(*v, penalty) != 0)
      reject(penalty, cat("'", penalty, "' is not supported (only 0)"));
  if (const json* v = field(body, "logit_bias"); v && !(v->is_object() && v->empty()))
    reject("logit_bias", "'logit_bias' is not supported");
  if (const json* v = field(body, "suffix"); v && !(v->is_string() && v->get<std::string>().empty()))
    reject("suffix", "'suffix' is not supported");
  if (const json* v = field(body, "tools"); v && !(v->is_array() && v->empty())) reject("tools", "'tools' are not supported");
  if (const json* v = field(body, "tool_choice"); v && !(v->is_string() && v->get<std::string>() == "none"))
    reject("tool_choice", "'tool_choice' is not supported (only \"none\")");
  if (const json* v = field(body, "response_format")) {
    if (!v->is_object() || v->value("type", json()) != "text")
      reject("response_format", "only 'response_format' {\"type\": \"text\"} is supported");
  }
  if (const json* v = field(body, "user")) read_string(*v, "user");
}

// "stream" and "stream_options": {"include_usage": bool}.
void read_stream(const json& body, bool& stream, bool& include_usage) {
  if (const json* v = field(body, "stream")) stream = read_bool(*v, "stream");
  if (const json* v = field(body, "stream_options")) {
    if (!v->is_object()) reject("stream_options", cat("'stream_options' must be an object", got(*v)));
    check_keys(*v, {"include_usage", "continuous_usage_stats"}, "stream_options");
    if (const json* u = field(*v, "include_usage")) include_usage = read_bool(*u, "stream_options.include_usage");
  }
}

std::optional<std::string> read_model(const json& body) {
  if (const json* v = field(body, "model")) return read_string(*v, "model");
  return std::nullopt;
}

// "prompt": "text" | [ids] | ["text"] | [[ids]] (a batch of one; larger batches are not supported).
void read_prompt(const json& body, CompletionRequest& request) {
  const json* prompt = field(body, "prompt");
  if (!prompt) reject("prompt", "'prompt' is required");
  const json* single = prompt;
  if (prompt->is_array() && !prompt->empty() && (prompt->front().is_string() || prompt->front().is_array())) {
    if (prompt->size() != 1) reject("prompt", cat("batched prompts are not supported (got ", prompt->size(), "); send one request each"));
    single = &prompt->front();
  }
  if (single->is_string()) {
    request.prompt_text = single->get<std::string>();
    if (request.prompt_text->empty()) reject("prompt", "'prompt' is empty");
  } else if (single->is_array()) {
    request.prompt_tokens = read_token_ids(*single, "prompt");
    if (request.prompt_tokens.empty()) reject("prompt", "'prompt' is empty");
  } else {
    reject("prompt", cat("'prompt' must be a string or a list of token ids", got(*single)));
  }
}

// A message's content: a string, or a list of {"type": "text", "text": ...} parts (joined); null only for assistant.
std::string read_content(const json& message, const std::string& where, ChatRole role) {
  const json* content = field(message, "content");
  if (!content) {
    if (role == ChatRole::assistant) return "";
    reject(where + ".content", cat("'", where, ".content' is required"));
  }
  if (content->is_string()) return content->get<std::string>();
  if (!content->is_array()) reject(where + ".content", cat("'", where, ".content' must be a string or a list of parts", got(*content)));
  std::string text;
  for (size_t i = 0; i < content->size(); ++i) {
    const json& part = (*content)[i];
    const std::string part_where = cat(where, ".content[", i, "]");
    if (!part.is_object()) reject(part_where, cat("'", part_where, "' must be an object", got(part)));
    const json* type = field(part, "type");
    if (!type || !type->is_string() || type->get<std::string>() != "text")
      reject(part_where, cat("'", part_where, "': only parts of type \"text\" are supported"));
    check_keys(part, {"type", "text"}, part_where);
    const json* part_text = field(part, "text");
    if (!part_text) reject(part_where + ".text", cat("'", part_where, ".text' is required"));
    text += read_string(*part_text, part_where + ".text");
  }
  return text;
}

ChatRole read_role(const json& message, const std::string& where) {
  const json* role = field(message, "role");
  if (!role) reject(where + ".role", cat("'", where, ".role' is required"));
  const std::string name = read_string(*role, where + ".role");
  if (name == "system" || name == "developer") return ChatRole::system;
  if (name == "user") return ChatRole::user;
  if (name == "assistant") return ChatRole::assistant;
  reject(where + ".role", cat("'", where, ".role' must be system, user or assistant (got \"", name, "\")"));
}

Conversation read_messages(const json& value) {
  if (!value.is_array()) reject("messages", cat("'messages' must be a list", got(value)));
  if (value.empty()) reject("messages", "'messages' is empty");
  Conversation conversation;
  for (size_t i = 0; i < value.size(); ++i) {
    const std::string where = cat("messages[", i, "]");
    const json& message = value[i];
    if (!message.is_object()) reject(where, cat("'", where, "' must be an object", got(message)));
    check_keys(message, {"role", "content", "name"}, where);
    ChatMessage turn;
    turn.role = read_role(message, where);
    if (turn.role == ChatRole::system && i != 0) reject(where, cat("'", where, "': a system message may only come first"));
    turn.content = read_content(message, where, turn.role);
    if (const json* name = field(message, "name")) read_string(*name, where + ".name");
    conversation.push_back(std::move(turn));
  }
  return conversation;
}

}  // namespace

CompletionRequest parse_completion_request(std::string_view body_text) {
  const json body = parse_body(body_text);
  check_keys(body, {"model", "prompt", "max_tokens", "temperature", "top_p", "top_k", "seed", "stop", "n", "stream",
                    "stream_options", "echo", "logprobs", "best_of", "presence_penalty", "frequency_penalty",
                    "logit_bias", "suffix", "user"},
             "");
  reject_unsupported(body);
  CompletionRequest request;
  request.model = read_model(body);
  read_prompt(body, request);
  read_sampling(body, request.sampling);
  if (const json* v = field(body, "max_tokens")) request.sampling.max_tokens = read_max_tokens(*v, "max_tokens", 0);
  read_stream(body, request.stream, request.include_usage);
  if (const json* v = field(body, "echo")) request.echo = read_bool(*v, "echo");
  if (const json* v = field(body, "logprobs")) {
    request.logprobs = read_top_n(*v, "logprobs");
    request.sampling.logprobs = *request.logprobs;
    request.sampling.prompt_logprobs = request.echo;
  }
  return request;
}

ChatCompletionRequest parse_chat_completion_request(std::string_view body_text) {
  const json body = parse_body(body_text);
  check_keys(body, {"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k", "seed",
                    "stop", "n", "stream", "stream_options", "logprobs", "top_logprobs", "presence_penalty",
                    "frequency_penalty", "logit_bias", "user", "tools", "tool_choice", "response_format", "metadata",
                    "store"},
             "");
  reject_unsupported(body);
  ChatCompletionRequest request;
  request.model = read_model(body);
  const json* messages = field(body, "messages");
  if (!messages) reject("messages", "'messages' is required");
  request.messages = read_messages(*messages);
  read_sampling(body, request.sampling);
  if (const json* v = field(body, "max_tokens")) request.max_tokens = read_max_tokens(*v, "max_tokens", 1);
  if (const json* v = field(body, "max_completion_tokens"))
    request.max_tokens = read_max_tokens(*v, "max_completion_tokens", 1);
  read_stream(body, request.stream, request.include_usage);
  if (const json* v = field(body, "logprobs")) request.logprobs = read_bool(*v, "logprobs");
  if (const json* v = field(body, "top_logprobs")) {
    request.top_logprobs = read_top_n(*v, "top_logprobs");
    if (!request.logprobs) reject("top_logprobs", "'top_logprobs' needs 'logprobs': true");
  }
  request.sampling.logprobs = request.top_logprobs;
  if (const json* v = field(body, "metadata"); v && !v->is_object()) reject("metadata", cat("'metadata' must be an object", got(*v)));
  if (const json* v = field(body, "store")) read_bool(*v, "store");
  return request;
}

TokenizeRequest parse_tokenize_request(std::string_view body_text) {
  const json body = parse_body(body_text);
  check_keys(body, {"model", "prompt", "messages", "add_special_tokens"}, "");
  TokenizeRequest request;
  const json* prompt = field(body, "prompt");
  const json* messages = field(body, "messages");
  if (prompt && messages) reject("prompt", "give either 'prompt' or 'messages', not both");
  if (prompt) request.prompt = read_string(*prompt, "prompt");
  else if (messages) request.messages = read_messages(*messages);
  else reject("prompt", "'prompt' (or 'messages') is required");
  if (const json* v = field(body, "model")) read_string(*v, "model");
  if (const json* v = field(body, "add_special_tokens")) read_bool(*v, "add_special_tokens");
  return request;
}

DetokenizeRequest parse_detokenize_request(std::string_view body_text) {
  const json body = parse_body(body_text);
  check_keys(body, {"model", "tokens"}, "");
  const json* tokens = field(body, "tokens");
  if (!tokens) reject("tokens", "'tokens' is required");
  if (!tokens->is_array()) reject("tokens", cat("'tokens' must be a list of token ids", got(*tokens)));
  if (const json* v = field(body, "model")) read_string(*v, "model");
  return DetokenizeRequest{read_token_ids(*tokens, "tokens")};
}

}  // namespace stepwise::http
