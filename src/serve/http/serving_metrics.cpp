// Rendering of the serving metrics (see serving_metrics.h). Names follow Prometheus conventions: base units
// (seconds), counters ending in _total, one "stepwise_" prefix.
#include "serve/http/serving_metrics.h"

#include <string>

namespace stepwise::http {

ServingMetrics::ServingMetrics()
    : time_to_first_token_({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80}),
      inter_token_latency_({0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5}),
      request_latency_({0.01, 0.05, 0.1, 0.3, 0.5, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120}) {}

void ServingMetrics::observe_time_to_first_token(double seconds) { time_to_first_token_.observe(seconds); }
void ServingMetrics::observe_inter_token_latency(double seconds) { inter_token_latency_.observe(seconds); }
void ServingMetrics::observe_request_latency(double seconds) { request_latency_.observe(seconds); }

void ServingMetrics::count_response(int status) {
  std::lock_guard lock(mutex_);
  ++responses_by_status_[status];
}

namespace {

void per_layer(PrometheusWriter& out, const std::string& name, const std::string& help, const std::vector<double>& values) {
  out.family(name, help, "counter");
  for (size_t layer = 0; layer < values.size(); ++layer) out.sample(name, values[layer], {{"layer", std::to_string(layer)}});
}

}  // namespace

std::string ServingMetrics::render(const EngineMetrics& engine) const {
  PrometheusWriter out;
  out.histogram("stepwise_time_to_first_token_seconds", "Time from request arrival to its first generated token.",
                time_to_first_token_.snapshot());
  out.histogram("stepwise_inter_token_latency_seconds", "Time between consecutive generated tokens of a request.",
                inter_token_latency_.snapshot());
  out.histogram("stepwise_request_latency_seconds", "Time from request arrival to its last token.",
                request_latency_.snapshot());
  out.counter("stepwise_prompt_tokens_total", "Prompt tokens processed (prefill).", double(engine.prompt_tokens_total));
  out.counter("stepwise_generation_tokens_total", "Tokens generated.", double(engine.generation_tokens_total));
  out.counter("stepwise_requests_total", "Requests admitted by the engine.", double(engine.requests_total));
  out.gauge("stepwise_requests_running", "Requests in the running batch.", double(engine.running));
  out.gauge("stepwise_requests_waiting", "Requests waiting for admission.", double(engine.waiting));
  out.gauge("stepwise_kv_cache_blocks_used", "KV-cache blocks in use.", double(engine.kv_blocks_used));
  out.gauge("stepwise_kv_cache_blocks_total", "KV-cache blocks in the pool.", double(engine.kv_blocks_total));
  out.gauge("stepwise_model_weight_bytes", "Model weights held by this process (AFD over MPI: the attention side).",
            double(engine.weight_bytes));
  out.gauge("stepwise_kv_cache_usage_ratio", "Fraction of KV-cache blocks in use (0..1).",
            engine.kv_blocks_total > 0 ? double(engine.kv_blocks_used) / double(engine.kv_blocks_total) : 0.0);
  per_layer(out, "stepwise_afd_attention_wait_seconds_total", "AFD: time attention workers waited for FFN results, per layer.",
            engine.attn_wait_seconds_per_layer);
  per_layer(out, "stepwise_afd_ffn_wait_seconds_total", "AFD: time FFN workers waited for work, per layer.",
            engine.ffn_wait_seconds_per_layer);
  out.family("stepwise_http_responses_total", "HTTP responses by status code.", "counter");
  std::lock_guard lock(mutex_);
  for (const auto& [status, count] : responses_by_status_)
    out.sample("stepwise_http_responses_total", double(count), {{"code", std::to_string(status)}});
  return out.text();
}

}  // namespace stepwise::http
