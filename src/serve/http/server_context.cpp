// The handlers' shared context (see server_context.h): engine access, model-name checks, token surfaces, ids.
#include "serve/http/server_context.h"

#include <random>

#include "core/error.h"
#include "data/tokenizer.h"
#include "serve/http/api_error.h"

namespace stepwise::http {

Engine& ServerContext::require_engine() const {
  Engine* attached = engine.load();
  if (!attached) throw ApiError(503, "the model is still loading", "server_error", "model_loading");
  return *attached;
}

std::string ServerContext::model_name() const {
  if (!options.model_name.empty()) return options.model_name;
  return require_engine().model_name();
}

void ServerContext::check_model(const std::optional<std::string>& requested) const {
  if (requested && *requested != model_name())
    throw ApiError(404, cat("The model `", *requested, "` does not exist (this server serves `", model_name(), "`)"),
                   "invalid_request_error", "model_not_found", "model");
}

TokenText ServerContext::token_text() const {
  const Tokenizer* tokenizer = &require_engine().tokenizer();
  return [tokenizer](int32_t id) { return token_surface(tokenizer->piece(id)); };
}

int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string make_response_id(const char* prefix) {
  thread_local std::mt19937_64 generator{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id = std::string(prefix) + "-";
  for (int i = 0; i < 24; ++i) id += kHex[generator() % 16];
  return id;
}

}  // namespace stepwise::http
