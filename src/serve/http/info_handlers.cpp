// The small endpoints: GET /v1/models, GET /health, GET /metrics, POST /tokenize, POST /detokenize.
#include "core/error.h"
#include "data/chat_template.h"
#include "data/tokenizer.h"
#include "serve/http/handlers.h"
#include "serve/http/requests.h"

namespace stepwise::http {

void handle_models(ServerContext& context, const httplib::Request&, httplib::Response& response) {
  const Engine& engine = context.require_engine();
  response.set_content(dump_json(models_body(context.model_name(), context.started_at, engine.max_model_len())),
                       "application/json");
}

void handle_health(ServerContext& context, const httplib::Request&, httplib::Response& response) {
  const Engine* engine = context.engine.load();
  const bool ready = engine && engine->ready();
  response.status = ready ? 200 : 503;
  const char* state = ready ? "ok" : engine ? "not accepting requests" : "loading";
  response.set_content(dump_json({{"status", state}}), "application/json");
}

void handle_metrics(ServerContext& context, const httplib::Request&, httplib::Response& response) {
  const Engine* engine = context.engine.load();
  const EngineMetrics engine_metrics = engine ? engine->metrics() : EngineMetrics{};
  response.set_content(context.metrics.render(engine_metrics), "text/plain; version=0.0.4; charset=utf-8");
}

void handle_tokenize(ServerContext& context, const httplib::Request& request, httplib::Response& response) {
  const TokenizeRequest parsed = parse_tokenize_request(request.body);
  const Engine& engine = context.require_engine();
  const std::vector<int32_t> tokens = parsed.prompt ? engine.tokenizer().encode(*parsed.prompt)
                                                    : render_prompt(engine.tokenizer(), parsed.messages);
  response.set_content(dump_json({{"tokens", tokens}, {"count", tokens.size()}, {"max_model_len", engine.max_model_len()}}),
                       "application/json");
}

void handle_detokenize(ServerContext& context, const httplib::Request& request, httplib::Response& response) {
  const DetokenizeRequest parsed = parse_detokenize_request(request.body);
  const Tokenizer& tokenizer = context.require_engine().tokenizer();
  for (size_t i = 0; i < parsed.tokens.size(); ++i)
    if (parsed.tokens[i] >= tokenizer.vocab_size())
      throw RequestError(cat("'tokens[", i, "]' = ", parsed.tokens[i], " is outside the vocabulary (size ",
                             tokenizer.vocab_size(), ")"), "tokens");
  response.set_content(dump_json({{"prompt", tokenizer.decode(parsed.tokens)}}), "application/json");
}

}  // namespace stepwise::http
