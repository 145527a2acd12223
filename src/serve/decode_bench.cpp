// run_decode_bench: one fresh engine per (batch, micro-batches) point, requests submitted together, timings taken
// from the event callbacks (first token, last token) on the engine thread.
#include "serve/decode_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>

#include "core/error.h"
#include "data/tokenizer.h"

namespace stepwise {

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = std::ceil(p / 100.0 * static_cast<double>(values.size()));
  const size_t i = static_cast<size_t>(std::clamp(rank, 1.0, static_cast<double>(values.size()))) - 1;
  return values[i];
}

std::vector<DecodeBenchRow> run_decode_bench(const DecodeBenchOptions& o) {
  using Clock = std::chrono::steady_clock;
  if (o.prompt_tokens < 1 || o.gen_tokens < 2) fail("bench decode: prompt_tokens >= 1 and gen_tokens >= 2 needed");
  std::vector<DecodeBenchRow> rows;
  for (int64_t mb : o.micro_batches)
    for (int64_t batch : o.batch_sizes) {
      if (batch < 1 || mb < 1) fail("bench decode: batch sizes and micro-batch counts must be positive");
      EngineOptions eo = o.engine;
      eo.micro_batches = mb;
      eo.max_running = std::max(eo.max_running, batch);
      eo.max_queue = std::max(eo.max_queue, batch);
      Engine engine(eo);
      const int32_t V = engine.tokenizer().vocab_size();
      std::mutex mu;
      std::condition_variable cv;
      int64_t finished = 0;
      std::vector<double> tpot, ttft;
      const Clock::time_point t0 = Clock::now();
      for (int64_t r = 0; r < batch; ++r) {
        GenerationRequest req;
        for (int64_t i = 0; i < o.prompt_tokens; ++i)   // ordinary tokens, a different prompt per request
          req.prompt.push_back(static_cast<int32_t>((r * 131 + i * 17 + 7) % V));
        req.sampling.temperature = 0;
        req.sampling.max_tokens = o.gen_tokens;
        req.sampling.stop_at_eot = false;
        auto first = std::make_shared<Clock::time_point>();
        engine.submit(std::move(req), [&, first](const GenerationEvent& ev) {
          const Clock::time_point now = Clock::now();
          std::lock_guard<std::mutex> lock(mu);
          if (ev.completion_tokens == 1) {
            *first = now;
            ttft.push_back(std::chrono::duration<double>(now - t0).count());
          }
          if (ev.finished) {
            if (ev.completion_tokens > 1)
              tpot.push_back(std::chrono::duration<double>(now - *first).count() /
                             static_cast<double>(ev.completion_tokens - 1));
            ++finished;
            cv.notify_all();
          }
          return true;
        });
      }
      {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return finished == batch; });
      }
      DecodeBenchRow row;
      row.batch = batch;
      row.micro_batches = mb;
      row.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
      row.tokens_per_second = static_cast<double>(batch * o.gen_tokens) / row.seconds;
      row.tpot_p50 = percentile(tpot, 50);
      row.tpot_p90 = percentile(tpot, 90);
      row.tpot_p99 = percentile(tpot, 99);
      row.ttft_p50 = percentile(ttft, 50);
      const EngineMetrics m = engine.metrics();
      for (double x : m.attn_wait_seconds_per_layer) row.attn_wait_seconds += x;
      for (double x : m.ffn_wait_seconds_per_layer) row.ffn_wait_seconds += x;
      rows.push_back(row);
    }
  return rows;
}

}  // namespace stepwise
