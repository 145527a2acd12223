// The /metrics page of `stepwise serve`: latency histograms measured at the HTTP layer (time to first token,
// inter-token latency, end-to-end) and response counts, rendered with the engine's counters and gauges (tokens,
// running/waiting requests, KV-cache usage, per-layer AFD wait totals) in Prometheus text format.
#pragma once
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include "serve/engine.h"
#include "serve/http/prometheus.h"

namespace stepwise::http {

class ServingMetrics {
 public:
  ServingMetrics();

  void observe_time_to_first_token(double seconds);
  void observe_inter_token_latency(double seconds);  // per generated token
  void observe_request_latency(double seconds);      // submit to last event
  void count_response(int status);                   // every HTTP response, by status code

  std::string render(const EngineMetrics& engine) const;

 private:
  Histogram time_to_first_token_;
  Histogram inter_token_latency_;
  Histogram request_latency_;
  mutable std::mutex mutex_;
  std::map<int, uint64_t> responses_by_status_;
};

}  // namespace stepwise::http
