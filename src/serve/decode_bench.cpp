// run_decode_bench: one fresh engine per (batch, micro-batches) point, requests submitted together, timings taken
// from the event callbacks (first token, last token) on the engine thread; one model shared by all of them.
#include "serve/decode_bench.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <mutex>

#include "core/error.h"
#include "model/model_info.h"
#include "serve/model_loader.h"

namespace stepwise {

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = std::ceil(p / 100.0 * static_cast<double>(values.size()));
  const size_t i = static_cast<size_t>(std::clamp(rank, 1.0, static_cast<double>(values.size()))) - 1;
  return values[i];
}

double decode_step_roofline_bytes(const Step3Config& cfg, int64_t batch, int64_t context, int64_t element_bytes) {
  const ModelInfo info = compute_model_info(cfg);
  const double B = static_cast<double>(batch);
  const double touched =
      cfg.moe_num_experts > 0
          ? 1.0 - std::pow(1.0 - static_cast<double>(cfg.moe_top_k) / static_cast<double>(cfg.moe_num_experts), B)
          : 0.0;
  const double weights = static_cast<double>(info.total_params - info.embedding_params - info.routed_expert_params) +
                         touched * static_cast<double>(info.routed_expert_params) +
                         B * static_cast<double>(cfg.hidden_size);
  const double kv = B * static_cast<double>(context) * 2.0 * static_cast<double>(cfg.head_dim * cfg.num_hidden_layers);
  return (weights + kv) * static_cast<double>(element_bytes);
}

std::shared_ptr<ServingModel> load_bench_model(const fs::path& path, uint64_t seed) {
  if (fs::is_directory(path)) return std::make_shared<ServingModel>(load_serving_model(path));
  if (!fs::is_regular_file(path)) fail(path.string(), ": neither a checkpoint directory nor a model config file");
  const Step3Config cfg = Step3Config::load(path);
  auto out = std::make_shared<ServingModel>();
  out->model = std::make_unique<Step3Model<float>>(cfg, ModelOptions{}, false);
  out->model->params().init(seed);
  return out;
}

std::vector<DecodeBenchRow> run_decode_bench(const DecodeBenchOptions& o) {
  using Clock = std::chrono::steady_clock;
  if (o.prompt_tokens < 1 || o.gen_tokens < 2) fail("bench decode: prompt_tokens >= 1 and gen_tokens >= 2 needed");
  std::shared_ptr<ServingModel> model = o.engine.model ? o.engine.model : load_bench_model(o.engine.model_dir);
  std::vector<DecodeBenchRow> rows;
  for (int64_t mb : o.micro_batches)
    for (int64_t batch : o.batch_sizes) {
      if (batch < 1 || mb < 1) fail("bench decode: batch sizes and micro-batch counts must be positive");
      EngineOptions eo = o.engine;
      eo.micro_batches = mb;
      eo.model = model;
      eo.max_running = std::max(eo.max_running, batch);
      eo.max_queue = std::max(eo.max_queue, batch);
      Engine engine(eo);
      const int64_t V = model->tokenizer.vocab_size() > 0 ? model->tokenizer.vocab_size()   // ordinary tokens
                                                           : model->model->config().vocab_size;
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
