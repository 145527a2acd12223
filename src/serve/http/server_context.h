// What the route handlers share: the options, the attached engine, the metrics and the served model's name.
// Internal to src/serve/http (the public surface is server.h).
#pragma once
#include <atomic>
#include <chrono>
#include <optional>
#include <string>

#include "serve/engine.h"
#include "serve/http/responses.h"
#include "serve/http/server.h"
#include "serve/http/serving_metrics.h"

namespace stepwise::http {

struct ServerContext {
  ServerOptions options;
  std::atomic<Engine*> engine{nullptr};
  ServingMetrics metrics;
  int64_t started_at = 0;  // unix seconds ("created" of the model entry)

  // The attached engine; ApiError 503 while none is.
  Engine& require_engine() const;
  std::string model_name() const;
  // ApiError 404 (model_not_found) when a request names another model.
  void check_model(const std::optional<std::string>& requested) const;
  // Token id -> its surface text, from the engine's tokenizer.
  TokenText token_text() const;
};

int64_t unix_seconds();
// "<prefix>-<random hex>".
std::string make_response_id(const char* prefix);

}  // namespace stepwise::http
