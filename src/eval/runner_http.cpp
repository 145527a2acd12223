// The HTTP eval backend: OpenAI-style request bodies, response parsing, and a pool of worker threads (one
// httplib::Client each) that runs the tasks with retries on connection errors and "busy" answers (429 / 503).
#include "eval/runner_http.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "data/chat_template.h"

namespace stepwise::eval {

ServerUrl parse_server_url(const std::string& url) {
  const size_t scheme_end = url.find("://");
  if (scheme_end == std::string::npos) fail("server URL '", url, "' has no scheme (expected http://HOST:PORT)");
  const std::string scheme = url.substr(0, scheme_end);
  if (scheme != "http" && scheme != "https") fail("server URL '", url, "': scheme '", scheme, "' is not http or https");
  const size_t host_start = scheme_end + 3;
  const size_t path_start = url.find('/', host_start);
  ServerUrl out;
  out.scheme_host_port = url.substr(0, path_start);
  if (out.scheme_host_port.size() <= host_start) fail("server URL '", url, "' has no host");
  std::string path = path_start == std::string::npos ? "" : url.substr(path_start);
  while (!path.empty() && path.back() == '/') path.pop_back();
  if (path.size() < 3 || path.compare(path.size() - 3, 3, "/v1") != 0) path += "/v1";
  out.api_path = path;
  return out;
}

json completion_request_body(const std::string& model, const std::string& prompt, int64_t max_tokens) {
  return {{"model", model}, {"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}, {"stream", false}};
}

json chat_request_body(const std::string& model, const std::string& user_text, int64_t max_tokens) {
  return {{"model", model},
          {"messages", json::array({{{"role", "user"}, {"content", user_text}}})},
          {"max_tokens", max_tokens},
          {"temperature", 0},
          {"stream", false}};
}

json echo_score_request_body(const std::string& model, const std::string& text, int64_t max_tokens) {
  return {{"model", model}, {"prompt", text},    {"max_tokens", max_tokens}, {"temperature", 0},
          {"echo", true},   {"logprobs", 1},     {"stream", false}};
}

namespace {

const json& field(const json& parent, const char* key, const std::string& what, const std::string& path) {
  if (!parent.is_object() || !parent.contains(key)) fail(what, ": response has no field '", path, "'");
  return parent.at(key);
}

const json& first_choice(const json& body, const std::string& what) {
  const json& choices = field(body, "choices", what, "choices");
  if (!choices.is_array() || choices.empty()) fail(what, ": response field 'choices' is not a non-empty array");
  return choices.front();
}

std::string string_field(const json& parent, const char* key, const std::string& what, const std::string& path) {
  const json& v = field(parent, key, what, path);
  if (!v.is_string()) fail(what, ": response field '", path, "' is not a string");
  return v.get<std::string>();
}

}  // namespace

std::string completion_text(const json& body, const std::string& what) {
  return string_field(first_choice(body, what), "text", what, "choices[0].text");
}

std::string chat_text(const json& body, const std::string& what) {
  const json& message = field(first_choice(body, what), "message", what, "choices[0].message");
  const json& content = field(message, "content", what, "choices[0].message.content");
  if (content.is_null()) return "";
  if (!content.is_string()) fail(what, ": response field 'choices[0].message.content' is not a string");
  return content.get<std::string>();
}

std::string first_model_id(const json& body, const std::string& what) {
  const json& data = field(body, "data", what, "data");
  if (!data.is_array() || data.empty()) fail(what, ": response field 'data' lists no model");
  return string_field(data.front(), "id", what, "data[0].id");
}

EchoedPrompt echoed_prompt(const json& body, int64_t max_tokens_sent, const std::string& what) {
  const json& logprobs = field(first_choice(body, what), "logprobs", what, "choices[0].logprobs");
  if (logprobs.is_null()) fail(what, ": response field 'choices[0].logprobs' is null (server ignored logprobs)");
  const json& tokens = field(logprobs, "tokens", what, "choices[0].logprobs.tokens");
  const json& values = field(logprobs, "token_logprobs", what, "choices[0].logprobs.token_logprobs");
  if (!tokens.is_array() || !values.is_array() || tokens.size() != values.size())
    fail(what, ": 'choices[0].logprobs.tokens' and 'token_logprobs' are not arrays of equal length");
  int64_t prompt_tokens = static_cast<int64_t>(tokens.size()) - max_tokens_sent;
  if (body.contains("usage") && body["usage"].is_object()) {
    const json& usage = body["usage"];
    if (usage.contains("prompt_tokens") && usage["prompt_tokens"].is_number_integer())
      prompt_tokens = usage["prompt_tokens"].get<int64_t>();
    else if (usage.contains("completion_tokens") && usage["completion_tokens"].is_number_integer())
      prompt_tokens = static_cast<int64_t>(tokens.size()) - usage["completion_tokens"].get<int64_t>();
  }
  if (prompt_tokens < 1 || prompt_tokens > static_cast<int64_t>(tokens.size()))
    fail(what, ": the prompt spans ", prompt_tokens, " tokens but ", tokens.size(),
         " were echoed (did the server echo the prompt?)");
  EchoedPrompt out;
  for (int64_t i = 0; i < prompt_tokens; ++i) {
    const json& t = tokens[static_cast<size_t>(i)];
    const json& v = values[static_cast<size_t>(i)];
    if (!t.is_string()) fail(what, ": 'choices[0].logprobs.tokens[", i, "]' is not a string");
    if (i > 0 && !v.is_number()) fail(what, ": 'choices[0].logprobs.token_logprobs[", i, "]' is not a number");
    out.tokens.push_back(t.get<std::string>());
    out.logprobs.push_back(i > 0 ? v.get<double>() : 0.0);
  }
  return out;
}

std::string scoring_text(const EvalPrompt& context) {
  if (context.style == PromptStyle::chat) return render_prompt_text({{ChatRole::user, context.text}});
  return context.text;
}

namespace {

// A non-2xx answer, kept apart from other errors so that callers can react to the status.
struct HttpStatusError : Error {
  HttpStatusError(int status_code, const std::string& message) : Error(message), status(status_code) {}
  int status;
};

std::unique_ptr<httplib::Client> make_client(const ServerUrl& url, const HttpBackendOptions& o) {
  auto client = std::make_unique<httplib::Client>(url.scheme_host_port);
  const auto seconds = static_cast<time_t>(o.timeout_s);
  const auto micros = static_cast<time_t>((o.timeout_s - static_cast<double>(seconds)) * 1e6);
  client->set_connection_timeout(10, 0);
  client->set_read_timeout(seconds, micros);
  client->set_write_timeout(seconds, micros);
  client->set_keep_alive(true);
  if (!o.api_key.empty()) client->set_bearer_token_auth(o.api_key.c_str());
  return client;
}

std::string error_message_of(const std::string& body) {
  const json doc = json::parse(body, nullptr, false);
  if (doc.is_object() && doc.contains("error") && doc["error"].is_object() && doc["error"].contains("message") &&
      doc["error"]["message"].is_string())
    return doc["error"]["message"].get<std::string>();
  return body.substr(0, 300);
}

// One request with retries: connection errors and 429 / 503 are retried with exponential backoff; other non-200
// answers throw HttpStatusError. `body` empty: GET.
json call(httplib::Client& client, const std::string& path, const json* body, const HttpBackendOptions& o,
          const std::string& what) {
  const std::string payload = body ? body->dump(-1, ' ', false, json::error_handler_t::replace) : "";
  for (int64_t attempt = 0;; ++attempt) {
    httplib::Result res = body ? client.Post(path.c_str(), payload, "application/json") : client.Get(path.c_str());
    const bool retryable = !res || res->status == 429 || res->status == 503;
    if (retryable && attempt < o.retries) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200 << attempt));
      continue;
    }
    if (!res) fail(what, ": no answer from the server: ", httplib::to_string(res.error()));
    if (res->status != 200)
      throw HttpStatusError(res->status, cat(what, ": HTTP ", res->status, ": ", error_message_of(res->body)));
    json doc = json::parse(res->body, nullptr, false);
    if (doc.is_discarded()) fail(what, ": the response body is not valid JSON");
    return doc;
  }
}

// Runs job(i, client) for i in [0, count) on `concurrency` threads, each with its own client. The first error stops
// the others from taking new jobs and is rethrown here.
void run_pool(size_t count, const ServerUrl& url, const HttpBackendOptions& o,
              const std::function<void(size_t, httplib::Client&)>& job) {
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  std::exception_ptr error;
  auto worker = [&] {
    std::unique_ptr<httplib::Client> client = make_client(url, o);
    while (!failed) {
      const size_t i = next++;
      if (i >= count) break;
      try {
        job(i, *client);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
        failed = true;
      }
    }
  };
  const size_t threads = std::min<size_t>(count, static_cast<size_t>(std::max<int64_t>(o.concurrency, 1)));
  std::vector<std::thread> pool;
  for (size_t t = 0; t < threads; ++t) pool.emplace_back(worker);
  for (std::thread& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace

HttpBackend::HttpBackend(HttpBackendOptions options) : options_(std::move(options)), url_(parse_server_url(options_.url)) {
  if (options_.concurrency < 1) fail("concurrency = ", options_.concurrency, " must be at least 1");
  if (options_.timeout_s <= 0) fail("timeout = ", options_.timeout_s, " s must be positive");
  model_ = options_.model;
  if (model_.empty()) {
    std::unique_ptr<httplib::Client> client = make_client(url_, options_);
    const std::string path = url_.api_path + "/models";
    model_ = first_model_id(call(*client, path, nullptr, options_, cat("GET ", options_.url, path)),
                            cat("GET ", path));
  }
}

std::string HttpBackend::model_label() const { return model_; }

json HttpBackend::settings() const {
  return {{"backend", "http"}, {"server", options_.url}, {"model", model_}, {"concurrency", options_.concurrency}};
}

std::vector<std::string> HttpBackend::generate(const std::vector<GenerateTask>& tasks, const TaskDone& on_done) {
  std::vector<std::string> out(tasks.size());
  std::mutex done_mu;
  run_pool(tasks.size(), url_, options_, [&](size_t i, httplib::Client& client) {
    const GenerateTask& t = tasks[i];
    const bool chat = t.prompt.style == PromptStyle::chat;
    const std::string path = url_.api_path + (chat ? "/chat/completions" : "/completions");
    const json body = chat ? chat_request_body(model_, t.prompt.text, t.max_tokens)
                           : completion_request_body(model_, t.prompt.text, t.max_tokens);
    const std::string what = cat("POST ", path, " (task ", i, ")");
    const json response = call(client, path, &body, options_, what);
    out[i] = chat ? chat_text(response, what) : completion_text(response, what);
    std::lock_guard<std::mutex> lock(done_mu);
    if (on_done) on_done();
  });
  return out;
}

std::vector<OptionLogProb> HttpBackend::score(const std::vector<ScoreTask>& tasks, const TaskDone& on_done) {
  // Jobs: every distinct context text first, then one context + continuation per task.
  std::vector<std::string> contexts;
  std::map<std::string, size_t> context_index;
  std::vector<size_t> task_context(tasks.size());
  std::vector<std::string> fulls(tasks.size());
  for (size_t i = 0; i < tasks.size(); ++i) {
    if (tasks[i].continuation.empty()) fail("eval task ", i, ": empty continuation");
    const std::string text = scoring_text(tasks[i].context);
    auto [it, inserted] = context_index.emplace(text, contexts.size());
    if (inserted) contexts.push_back(text);
    task_context[i] = it->second;
    fulls[i] = text + tasks[i].continuation;
  }
  std::vector<EchoedPrompt> echoed(contexts.size() + tasks.size());
  std::atomic<int64_t> max_tokens{score_max_tokens_};
  std::mutex done_mu;
  const std::string path = url_.api_path + "/completions";
  run_pool(echoed.size(), url_, options_, [&](size_t job, httplib::Client& client) {
    const bool is_context = job < contexts.size();
    const std::string& text = is_context ? contexts[job] : fulls[job - contexts.size()];
    const std::string what = is_context ? cat("POST ", path, " (scoring context ", job, ")")
                                        : cat("POST ", path, " (scoring task ", job - contexts.size(), ")");
    for (;;) {
      const int64_t sent = max_tokens.load();
      const json body = echo_score_request_body(model_, text, sent);
      try {
        echoed[job] = echoed_prompt(call(client, path, &body, options_, what), sent, what);
        break;
      } catch (const HttpStatusError& e) {
        if (e.status != 400 || sent != 0) throw;
        max_tokens = 1;  // the server wants at least one generated token; it is dropped from the echo
      }
    }
    if (!is_context) {
      std::lock_guard<std::mutex> lock(done_mu);
      if (on_done) on_done();
    }
  });
  score_max_tokens_ = max_tokens.load();
  std::vector<OptionLogProb> out;
  out.reserve(tasks.size());
  for (size_t i = 0; i < tasks.size(); ++i) {
    const EchoedPrompt& context = echoed[task_context[i]];
    const EchoedPrompt& full = echoed[contexts.size() + i];
    out.push_back(continuation_logprob(context.tokens, full.tokens, full.logprobs, cat("scoring task ", i)));
  }
  return out;
}

}  // namespace stepwise::eval
