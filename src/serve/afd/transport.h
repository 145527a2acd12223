// The link between the attention side and the FFN side of Attention-FFN disaggregation. Messages are plain buffers
// so that a process-level transport (MPI) can carry them unchanged: attention -> FFN the normalised hidden states
// (n, C) and the routing (n, K) ids + weights of one layer of one micro-batch; FFN -> attention its output (n, C).
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace stepwise {

struct FfnWork {
  int64_t step = 0;              // the attention side's step number: a result carries it back
  int64_t layer = 0, micro_batch = 0, n = 0;
  std::vector<float> hidden;     // (n, C) post_attention_layernorm output
  std::vector<int32_t> ids;      // (n, K) routed experts; empty on dense layers
  std::vector<float> weights;    // (n, K) their weights; empty on dense layers
};

struct FfnResult {
  int64_t step = 0;              // the step of the work it answers (results of an earlier, failed step are dropped)
  int64_t layer = 0, micro_batch = 0, n = 0;
  std::vector<float> out;        // (n, C) FFN output (added to the residual stream by the attention side)
  std::string error;             // non-empty when the FFN side failed on this work
  double wait_seconds = 0;       // how long the FFN worker waited for this work (the attention side records it)
};

class Transport {
 public:
  virtual ~Transport() = default;
  // attention side
  virtual void send_work(FfnWork work) = 0;
  virtual FfnResult recv_result() = 0;                 // blocks until a result arrives
  // FFN side
  virtual std::optional<FfnWork> recv_work() = 0;      // blocks; nullopt once the transport is closed
  virtual void send_result(FfnResult result) = 0;
  virtual void close() = 0;                            // FFN receivers wake with nullopt
};

// A queue that blocks on pop until an item arrives or it is closed.
template <class Item>
class BlockingQueue {
 public:
  void push(Item item) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      items_.push_back(std::move(item));
    }
    cv_.notify_one();
  }
  std::optional<Item> pop() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return closed_ || !items_.empty(); });
    if (items_.empty()) return std::nullopt;
    Item item = std::move(items_.front());
    items_.pop_front();
    return item;
  }
  void close() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      closed_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> items_;
  bool closed_ = false;
};

// In-process transport: two queues between threads (any number of FFN threads may share the work queue).
class InprocTransport : public Transport {
 public:
  void send_work(FfnWork work) override { work_.push(std::move(work)); }
  FfnResult recv_result() override;
  std::optional<FfnWork> recv_work() override { return work_.pop(); }
  void send_result(FfnResult result) override { results_.push(std::move(result)); }
  void close() override {
    work_.close();
    results_.close();
  }

 private:
  BlockingQueue<FfnWork> work_;
  BlockingQueue<FfnResult> results_;
};

}  // namespace stepwise
