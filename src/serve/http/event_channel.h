// Hands one request's generation events from the engine thread (the EventCallback) to the HTTP thread that writes
// them out. The HTTP side marks the channel abandoned when its client is gone; the engine's callback then returns
// false, which cancels the request and frees its KV blocks.
#pragma once
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <vector>

#include "serve/engine.h"

namespace stepwise::http {

class EventChannel {
 public:
  // Engine side: queues the event; returns false once abandoned (the request is then cancelled).
  bool push(const GenerationEvent& event);
  // HTTP side: the queued events, waiting up to `timeout` for at least one (empty on timeout).
  std::vector<GenerationEvent> take(std::chrono::milliseconds timeout);
  void abandon();
  bool abandoned() const;

 private:
  mutable std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<GenerationEvent> events_;
  bool abandoned_ = false;
};

}  // namespace stepwise::http
