// The in-process eval backend: submits greedy requests to a serve Engine with a bounded number in flight and joins
// the streamed events back into one reply per task (text, or prompt log-probs for scoring).
#include "eval/runner_engine.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <stdexcept>

#include "core/error.h"
#include "data/chat_template.h"

namespace stepwise::eval {

std::vector<int32_t> tokenize_prompt(const Tokenizer& tokenizer, const EvalPrompt& prompt) {
  if (prompt.style == PromptStyle::chat) return render_prompt(tokenizer, {{ChatRole::user, prompt.text}});
  return tokenizer.encode_literal(prompt.text);
}

std::vector<int32_t> tokenize_scored(const Tokenizer& tokenizer, const EvalPrompt& context,
                                     const std::string& continuation) {
  if (context.style == PromptStyle::plain) return tokenizer.encode_literal(context.text + continuation);
  std::vector<int32_t> ids = tokenize_prompt(tokenizer, context);
  const std::vector<int32_t> tail = tokenizer.encode_literal(continuation);
  ids.insert(ids.end(), tail.begin(), tail.end());
  return ids;
}

struct EngineBackend::Reply {
  std::string text;
  std::vector<double> prompt_logprobs;  // (prompt length - 1)
  std::string finish_reason, error;
};

EngineBackend::EngineBackend(EngineOptions options, int64_t concurrency)
    : options_(std::move(options)), concurrency_(concurrency) {
  if (concurrency_ < 1) fail("concurrency = ", concurrency_, " must be at least 1");
  options_.max_running = std::max(options_.max_running, concurrency_);
  options_.max_queue = std::max(options_.max_queue, concurrency_);
  engine_ = std::make_unique<Engine>(options_);
}

EngineBackend::~EngineBackend() = default;

std::string EngineBackend::model_label() const { return engine_->model_name(); }

json EngineBackend::settings() const {
  return {{"backend", "engine"},
          {"model_dir", options_.model_dir.string()},
          {"concurrency", concurrency_},
          {"transport", options_.transport},
          {"max_model_len", engine_->max_model_len()}};
}

const Tokenizer& EngineBackend::tokenizer() const { return engine_->tokenizer(); }
int64_t EngineBackend::max_model_len() const { return engine_->max_model_len(); }

std::vector<EngineBackend::Reply> EngineBackend::run(std::vector<GenerationRequest> requests, const TaskDone& on_done) {
  // Shared with the callbacks, which may outlive this call when it throws (the engine cancels them later).
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<Reply> replies;
    std::deque<size_t> finished;
  };
  auto state = std::make_shared<State>();
  state->replies.resize(requests.size());
  std::vector<uint64_t> ids(requests.size(), 0);
  size_t next = 0, done = 0, in_flight = 0;
  auto cancel_in_flight = [&] {
    for (size_t i = 0; i < next; ++i) engine_->cancel(ids[i]);
  };
  while (done < requests.size()) {
    while (next < requests.size() && static_cast<int64_t>(in_flight) < concurrency_) {
      const size_t slot = next;
      auto callback = [state, slot](const GenerationEvent& ev) {
        std::lock_guard<std::mutex> lock(state->mu);
        Reply& r = state->replies[slot];
        if (!ev.prompt_logprobs.empty())
          for (const TokenLogprob& t : ev.prompt_logprobs) r.prompt_logprobs.push_back(t.logprob);
        r.text += ev.text;
        if (ev.finished) {
          r.finish_reason = ev.finish_reason;
          r.error = ev.error;
          state->finished.push_back(slot);
          state->cv.notify_all();
        }
        return true;
      };
      try {
        ids[slot] = engine_->submit(std::move(requests[slot]), std::move(callback));
      } catch (const std::invalid_argument& e) {
        cancel_in_flight();
        fail("eval request ", slot, " rejected by the engine: ", e.what());
      } catch (const QueueFull& e) {
        cancel_in_flight();
        fail("eval request ", slot, ": engine queue full: ", e.what());
      }
      ++next;
      ++in_flight;
    }
    std::deque<size_t> batch;
    {
      std::unique_lock<std::mutex> lock(state->mu);
      state->cv.wait(lock, [&] { return !state->finished.empty(); });
      batch.swap(state->finished);
    }
    for (const size_t slot : batch) {
      --in_flight;
      ++done;
      std::string reason, error;
      {
        std::lock_guard<std::mutex> lock(state->mu);
        reason = state->replies[slot].finish_reason;
        error = state->replies[slot].error;
      }
      if (reason == "error" || reason == "cancelled") {
        cancel_in_flight();
        fail("eval request ", slot, " failed in the engine: ", error.empty() ? reason : error);
      }
      if (on_done) on_done();
    }
  }
  std::lock_guard<std::mutex> lock(state->mu);
  return std::move(state->replies);
}

std::vector<std::string> EngineBackend::generate(const std::vector<GenerateTask>& tasks, const TaskDone& on_done) {
  const int64_t max_len = engine_->max_model_len();
  std::vector<GenerationRequest> requests;
  requests.reserve(tasks.size());
  for (size_t i = 0; i < tasks.size(); ++i) {
    GenerationRequest r;
    r.prompt = tokenize_prompt(engine_->tokenizer(), tasks[i].prompt);
    const int64_t room = max_len - static_cast<int64_t>(r.prompt.size());
    if (room < 1)
      fail("eval task ", i, ": the prompt has ", r.prompt.size(), " tokens, leaving no room under max_model_len ",
           max_len);
    r.sampling.temperature = 0;
    r.sampling.max_tokens = std::min(tasks[i].max_tokens, room);
    r.sampling.stop_at_eot = true;
    requests.push_back(std::move(r));
  }
  std::vector<Reply> replies = run(std::move(requests), on_done);
  std::vector<std::string> out;
  out.reserve(replies.size());
  for (Reply& r : replies) out.push_back(std::move(r.text));
  return out;
}

std::vector<OptionLogProb> EngineBackend::score(const std::vector<ScoreTask>& tasks, const TaskDone& on_done) {
  const Tokenizer& tok = engine_->tokenizer();
  std::vector<GenerationRequest> requests;
  std::vector<std::vector<int32_t>> contexts;
  requests.reserve(tasks.size());
  contexts.reserve(tasks.size());
  for (size_t i = 0; i < tasks.size(); ++i) {
    if (tasks[i].continuation.empty()) fail("eval task ", i, ": empty continuation");
    GenerationRequest r;
    r.prompt = tokenize_scored(tok, tasks[i].context, tasks[i].continuation);
    if (static_cast<int64_t>(r.prompt.size()) + 1 > engine_->max_model_len())
      fail("eval task ", i, ": context + continuation has ", r.prompt.size(), " tokens, more than max_model_len ",
           engine_->max_model_len(), " allows");
    r.sampling.temperature = 0;
    r.sampling.max_tokens = 1;  // the engine's minimum; the sampled token is ignored
    r.sampling.prompt_logprobs = true;
    contexts.push_back(tokenize_prompt(tok, tasks[i].context));
    requests.push_back(std::move(r));
  }
  std::vector<std::vector<int32_t>> fulls;
  fulls.reserve(requests.size());
  for (const GenerationRequest& r : requests) fulls.push_back(r.prompt);
  const std::vector<Reply> replies = run(std::move(requests), on_done);
  std::vector<OptionLogProb> out;
  out.reserve(replies.size());
  for (size_t i = 0; i < replies.size(); ++i) {
    if (replies[i].prompt_logprobs.size() + 1 != fulls[i].size())
      fail("eval task ", i, ": the engine returned ", replies[i].prompt_logprobs.size(), " prompt log-probs for ",
           fulls[i].size(), " prompt tokens");
    std::vector<double> logprobs(fulls[i].size(), 0.0);
    std::copy(replies[i].prompt_logprobs.begin(), replies[i].prompt_logprobs.end(), logprobs.begin() + 1);
    out.push_back(continuation_logprob(contexts[i], fulls[i], logprobs, cat("eval task ", i)));
  }
  return out;
}

}  // namespace stepwise::eval
