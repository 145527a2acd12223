// The HTTP eval backend: a client of any OpenAI-compatible server (`stepwise serve`, vLLM, ...). Generation goes to
// POST /v1/chat/completions (chat style) or /v1/completions (plain), greedy; scoring to /v1/completions with
// echo = true, logprobs = 1 and max_tokens = 0 (1 when the server refuses 0), once for each distinct context and
// once per context + continuation, the continuation's tokens being those past the common token prefix (see
// ScoreTask). A pool of `concurrency` worker threads, each with its own connection. Request bodies and response
// parsing are pure functions, tested without a server.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "eval/runner_backend.h"

namespace stepwise::eval {

// "http://host:port[/prefix]" split for httplib::Client: scheme://host:port, and the API's path prefix ending in
// "/v1" ("/v1" is appended unless the URL already ends with it). Error for other schemes or a missing host.
struct ServerUrl {
  std::string scheme_host_port;  // "http://127.0.0.1:8000"
  std::string api_path;          // "/v1"
};
ServerUrl parse_server_url(const std::string& url);

// Request bodies (temperature 0: greedy).
json completion_request_body(const std::string& model, const std::string& prompt, int64_t max_tokens);
json chat_request_body(const std::string& model, const std::string& user_text, int64_t max_tokens);
json echo_score_request_body(const std::string& model, const std::string& text, int64_t max_tokens);

// Response bodies; each Error names `what` (e.g. "POST /v1/completions (task 3)") and the missing or mistyped field.
std::string completion_text(const json& body, const std::string& what);  // choices[0].text
std::string chat_text(const json& body, const std::string& what);        // choices[0].message.content (null -> "")
std::string first_model_id(const json& body, const std::string& what);   // GET /v1/models: data[0].id

// The echoed prompt of a scoring response: its token strings and log-probs (entry 0: the first token, no log-prob,
// given as 0). Generated tokens after the prompt are dropped: the prompt's length is usage.prompt_tokens, or the
// token count less usage.completion_tokens, or less `max_tokens_sent` when the server gives no usage.
struct EchoedPrompt {
  std::vector<std::string> tokens;
  std::vector<double> logprobs;
};
EchoedPrompt echoed_prompt(const json& body, int64_t max_tokens_sent, const std::string& what);

// The text actually sent for scoring (the chat template rendered as text for the chat style).
std::string scoring_text(const EvalPrompt& context);

struct HttpBackendOptions {
  std::string url;              // e.g. http://127.0.0.1:8000
  std::string api_key;          // sent as "Authorization: Bearer KEY" when not empty
  std::string model;            // the "model" field; empty: the first id of GET /v1/models
  int64_t concurrency = 8;      // requests in flight
  double timeout_s = 600;       // per request (read / write)
  int64_t retries = 3;          // extra attempts after a connection error or HTTP 429 / 503
};

class HttpBackend : public EvalBackend {
 public:
  explicit HttpBackend(HttpBackendOptions options);  // resolves the model (GET /v1/models) when not given

  std::string model_label() const override;
  json settings() const override;
  std::vector<std::string> generate(const std::vector<GenerateTask>& tasks, const TaskDone& on_done) override;
  std::vector<OptionLogProb> score(const std::vector<ScoreTask>& tasks, const TaskDone& on_done) override;

 private:
  HttpBackendOptions options_;
  ServerUrl url_;
  std::string model_;
  int64_t score_max_tokens_ = 0;  // becomes 1 once the server refuses max_tokens = 0
};

}  // namespace stepwise::eval
