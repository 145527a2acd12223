// POST /v1/completions and POST /v1/chat/completions: typed request -> token prompt -> engine.submit, then either
// wait for the whole result or stream SSE chunks as events arrive. A streamed client that goes away abandons its
// channel; the engine's callback then returns false and the request is cancelled (its KV blocks freed).
#include <algorithm>
#include <chrono>
#include <memory>

#include "core/error.h"
#include "data/chat_template.h"
#include "data/tokenizer.h"
#include "serve/http/api_error.h"
#include "serve/http/event_channel.h"
#include "serve/http/handlers.h"
#include "serve/http/requests.h"

namespace stepwise::http {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kEventWait = std::chrono::milliseconds(250);

double seconds_between(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration<double>(to - from).count();
}

// Times one request's events for the latency histograms. Called on the engine thread only.
class LatencyRecorder {
 public:
  explicit LatencyRecorder(ServingMetrics& metrics) : metrics_(metrics), arrival_(Clock::now()), last_token_(arrival_) {}

  void on_event(const GenerationEvent& event) {
    const Clock::time_point now = Clock::now();
    if (!event.tokens.empty()) {
      const double elapsed = seconds_between(last_token_, now);
      if (!first_token_seen_) {
        metrics_.observe_time_to_first_token(elapsed);
        first_token_seen_ = true;
      } else {
        for (size_t i = 0; i < event.tokens.size(); ++i) metrics_.observe_inter_token_latency(elapsed / double(event.tokens.size()));
      }
      last_token_ = now;
    }
    if (event.finished) metrics_.observe_request_latency(seconds_between(arrival_, now));
  }

 private:
  ServingMetrics& metrics_;
  Clock::time_point arrival_, last_token_;
  bool first_token_seen_ = false;
};

struct Submitted {
  std::shared_ptr<EventChannel> channel;
  uint64_t request_id = 0;
};

// QueueFull (429) and std::invalid_argument (400) from the engine propagate to the server's wrapper.
// max_tokens = 0 (scoring a prompt: echo + logprobs) runs one generation step, the engine's minimum, and drops
// the generated token from every event, so the client sees the prompt's logprobs and an empty completion.
Submitted submit(ServerContext& context, Engine& engine, GenerationRequest request) {
  auto channel = std::make_shared<EventChannel>();
  auto recorder = std::make_shared<LatencyRecorder>(context.metrics);
  const bool score_only = request.sampling.max_tokens == 0;
  if (score_only) request.sampling.max_tokens = 1;
  const uint64_t id = engine.submit(std::move(request), [channel, recorder, score_only](const GenerationEvent& event) {
    recorder->on_event(event);
    if (!score_only) return channel->push(event);
    GenerationEvent scored = event;
    scored.tokens.clear();
    scored.text.clear();
    scored.completion_tokens = 0;
    if (scored.finished && scored.finish_reason == "stop") scored.finish_reason = "length";
    return channel->push(scored);
  });
  return {channel, id};
}

GenerationResult wait_for_result(EventChannel& channel) {
  GenerationResult result;
  while (!result.finished)
    for (const GenerationEvent& event : channel.take(kEventWait)) result.add(event);
  return result;
}

void check_finished_normally(const GenerationResult& result) {
  if (result.finish_reason == "error") throw std::runtime_error(cat("generation failed: ", result.error));
  if (result.finish_reason == "cancelled")
    throw ApiError(503, "the request was cancelled (the server is shutting down)", "server_error", "cancelled");
}

// The prompt must fit the context with room for max_tokens (HTTP 400 otherwise, before anything is queued).
void check_context(const Engine& engine, size_t prompt_tokens, int64_t max_tokens, const char* prompt_field,
                   const char* max_tokens_field) {
  const int64_t context = engine.max_model_len();
  if (prompt_tokens == 0) throw RequestError(cat("'", prompt_field, "' encodes to no tokens"), prompt_field);
  if (int64_t(prompt_tokens) > context)
    throw RequestError(cat("the prompt has ", prompt_tokens, " tokens; this model's context is ", context, " tokens"),
                       prompt_field);
  if (max_tokens > context - int64_t(prompt_tokens))
    throw RequestError(cat("'", max_tokens_field, "' = ", max_tokens, " plus the prompt's ", prompt_tokens,
                           " tokens exceeds this model's context of ", context, " tokens"),
                       max_tokens_field);
}

void check_vocabulary(const Tokenizer& tokenizer, const std::vector<int32_t>& tokens, const char* field) {
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i] >= tokenizer.vocab_size())
      throw RequestError(cat("'", field, "[", i, "]' = ", tokens[i], " is outside the vocabulary (size ",
                             tokenizer.vocab_size(), ")"), field);
}

// Turns one request's events into SSE text.
class StreamFormatter {
 public:
  virtual ~StreamFormatter() = default;
  virtual std::string start() = 0;                              // before any event
  virtual std::string event(const GenerationEvent& event) = 0;  // the last one also gets the final chunks
};

std::string stream_error(const GenerationEvent& event) {
  const std::string message = event.finish_reason == "error" ? cat("generation failed: ", event.error)
                                                             : std::string("the request was cancelled");
  return sse_event(error_body(message, "server_error", "", event.finish_reason));
}

class CompletionStream : public StreamFormatter {
 public:
  CompletionStream(ResponseMeta meta, const CompletionRequest& request, std::string prompt_text,
                   std::vector<int32_t> prompt, TokenText token_text)
      : meta_(std::move(meta)), echo_(request.echo), with_logprobs_(request.logprobs.has_value()),
        include_usage_(request.include_usage), prompt_text_(std::move(prompt_text)), prompt_(std::move(prompt)),
        logprobs_(std::move(token_text), echo_ ? 0 : int64_t(prompt_text_.size())) {}

  std::string start() override { return ""; }

  std::string event(const GenerationEvent& event) override {
    std::string out;
    if (first_ && echo_) {
      const json logprobs = with_logprobs_ ? logprobs_.prompt(prompt_, event.prompt_logprobs) : json();
      out += sse_event(completion_chunk(meta_, prompt_text_, logprobs, ""));
    }
    first_ = false;
    if (event.finished && (event.finish_reason == "error" || event.finish_reason == "cancelled")) return out + stream_error(event);
    if (!event.tokens.empty() || !event.text.empty()) {
      const json logprobs = with_logprobs_ ? logprobs_.generated(event.tokens) : json();
      out += sse_event(completion_chunk(meta_, event.text, logprobs, ""));
    }
    if (event.finished) {
      out += sse_event(completion_chunk(meta_, "", json(), event.finish_reason));
      if (include_usage_) out += sse_event(usage_chunk(meta_, "text_completion", event.prompt_tokens, event.completion_tokens));
    }
    return out;
  }

 private:
  ResponseMeta meta_;
  bool echo_, with_logprobs_, include_usage_;
  std::string prompt_text_;
  std::vector<int32_t> prompt_;
  CompletionLogprobs logprobs_;
  bool first_ = true;
};

class ChatStream : public StreamFormatter {
 public:
  ChatStream(ResponseMeta meta, const ChatCompletionRequest& request, TokenText token_text)
      : meta_(std::move(meta)), with_logprobs_(request.logprobs), include_usage_(request.include_usage),
        token_text_(std::move(token_text)) {}

  std::string start() override {
    return sse_event(chat_chunk(meta_, {{"role", "assistant"}, {"content", ""}}, json(), ""));
  }

  std::string event(const GenerationEvent& event) override {
    if (event.finished && (event.finish_reason == "error" || event.finish_reason == "cancelled")) return stream_error(event);
    std::string out;
    if (!event.tokens.empty() || !event.text.empty()) {
      const json logprobs = with_logprobs_ ? chat_logprobs(event.tokens, token_text_) : json();
      out += sse_event(chat_chunk(meta_, {{"content", event.text}}, logprobs, ""));
    }
    if (event.finished) {
      out += sse_event(chat_chunk(meta_, json::object(), json(), event.finish_reason));
      if (include_usage_) out += sse_event(usage_chunk(meta_, "chat.completion.chunk", event.prompt_tokens, event.completion_tokens));
    }
    return out;
  }

 private:
  ResponseMeta meta_;
  bool with_logprobs_, include_usage_;
  TokenText token_text_;
};

// Streams the request's events as SSE. The provider stays in one call until the last event so that a server
// shutting down (SIGTERM) lets the stream finish; a failed write means the client is gone: cancel.
void stream_response(httplib::Response& response, Engine& engine, const Submitted& submitted,
                     std::shared_ptr<StreamFormatter> formatter) {
  auto channel = submitted.channel;
  const uint64_t id = submitted.request_id;
  Engine* engine_ptr = &engine;
  response.set_header("Cache-Control", "no-cache");
  response.set_chunked_content_provider(
      "text/event-stream",
      [channel, id, engine_ptr, formatter](size_t, httplib::DataSink& sink) {
        const auto write = [&](const std::string& text) { return text.empty() || sink.write(text.data(), text.size()); };
        const auto give_up = [&] {
          channel->abandon();
          engine_ptr->cancel(id);
          return false;
        };
        if (!write(formatter->start())) return give_up();
        for (;;) {
          for (const GenerationEvent& event : channel->take(kEventWait)) {
            std::string text = formatter->event(event);
            if (event.finished) text += sse_done();
            if (!write(text)) return give_up();
            if (event.finished) {
              sink.done();
              return true;
            }
          }
        }
      },
      [channel, id, engine_ptr](bool success) {
        if (success) return;
        channel->abandon();
        engine_ptr->cancel(id);
      });
}

}  // namespace

void handle_completions(ServerContext& context, const httplib::Request& request, httplib::Response& response) {
  CompletionRequest parsed = parse_completion_request(request.body);
  Engine& engine = context.require_engine();
  context.check_model(parsed.model);
  const Tokenizer& tokenizer = engine.tokenizer();
  std::vector<int32_t> prompt = parsed.prompt_text ? tokenizer.encode(*parsed.prompt_text) : parsed.prompt_tokens;
  check_vocabulary(tokenizer, prompt, "prompt");
  // max_tokens = 0 still takes one step (see submit): room for one token.
  check_context(engine, prompt.size(), std::max<int64_t>(parsed.sampling.max_tokens, 1), "prompt", "max_tokens");
  const std::string prompt_text = parsed.prompt_text ? *parsed.prompt_text : tokenizer.decode(prompt);

  const ResponseMeta meta{make_response_id("cmpl"), unix_seconds(), context.model_name()};
  const TokenText token_text = context.token_text();
  const Submitted submitted = submit(context, engine, GenerationRequest{prompt, parsed.sampling});
  if (parsed.stream) {
    stream_response(response, engine, submitted,
                    std::make_shared<CompletionStream>(meta, parsed, prompt_text, prompt, token_text));
    return;
  }
  const GenerationResult result = wait_for_result(*submitted.channel);
  check_finished_normally(result);
  json logprobs;
  if (parsed.logprobs) {
    CompletionLogprobs builder(token_text, parsed.echo ? 0 : int64_t(prompt_text.size()));
    logprobs = parsed.echo ? CompletionLogprobs::join(builder.prompt(prompt, result.prompt_logprobs), builder.generated(result.tokens))
                           : builder.generated(result.tokens);
  }
  const std::string text = parsed.echo ? prompt_text + result.text : result.text;
  response.set_content(
      dump_json(completion_body(meta, text, logprobs, result.finish_reason, result.prompt_tokens, result.completion_tokens)),
      "application/json");
}

void handle_chat_completions(ServerContext& context, const httplib::Request& request, httplib::Response& response) {
  ChatCompletionRequest parsed = parse_chat_completion_request(request.body);
  Engine& engine = context.require_engine();
  context.check_model(parsed.model);
  const std::vector<int32_t> prompt = render_prompt(engine.tokenizer(), parsed.messages);
  // Without max_tokens the reply may use the rest of the context (at least one token must fit).
  parsed.sampling.max_tokens = parsed.max_tokens.value_or(std::max<int64_t>(engine.max_model_len() - int64_t(prompt.size()), 1));
  check_context(engine, prompt.size(), parsed.sampling.max_tokens, "messages",
                parsed.max_tokens ? "max_tokens" : "messages");

  const ResponseMeta meta{make_response_id("chatcmpl"), unix_seconds(), context.model_name()};
  const TokenText token_text = context.token_text();
  const Submitted submitted = submit(context, engine, GenerationRequest{prompt, parsed.sampling});
  if (parsed.stream) {
    stream_response(response, engine, submitted, std::make_shared<ChatStream>(meta, parsed, token_text));
    return;
  }
  const GenerationResult result = wait_for_result(*submitted.channel);
  check_finished_normally(result);
  const json logprobs = parsed.logprobs ? chat_logprobs(result.tokens, token_text) : json();
  response.set_content(dump_json(chat_completion_body(meta, result.text, logprobs, result.finish_reason,
                                                      result.prompt_tokens, result.completion_tokens)),
                       "application/json");
}

}  // namespace stepwise::http
