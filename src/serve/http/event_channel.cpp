// The engine -> HTTP hand-over of one request's events (see event_channel.h).
#include "serve/http/event_channel.h"

namespace stepwise::http {

bool EventChannel::push(const GenerationEvent& event) {
  {
    std::lock_guard lock(mutex_);
    if (abandoned_) return false;
    events_.push_back(event);
  }
  ready_.notify_one();
  return true;
}

std::vector<GenerationEvent> EventChannel::take(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  ready_.wait_for(lock, timeout, [&] { return !events_.empty(); });
  std::vector<GenerationEvent> taken(std::make_move_iterator(events_.begin()), std::make_move_iterator(events_.end()));
  events_.clear();
  return taken;
}

void EventChannel::abandon() {
  std::lock_guard lock(mutex_);
  abandoned_ = true;
  events_.clear();
}

bool EventChannel::abandoned() const {
  std::lock_guard lock(mutex_);
  return abandoned_;
}

}  // namespace stepwise::http
