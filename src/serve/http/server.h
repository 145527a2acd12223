// The OpenAI-compatible HTTP server of `stepwise serve`: a flat route table over an Engine, one exception wrapper
// that maps errors to status codes and OpenAI error bodies, optional bearer-token auth, and the /metrics page.
// Holds no model state; every generation is posted to the engine and streamed back from its events.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "serve/engine.h"

namespace stepwise::http {

struct ServerOptions {
  std::string api_key;          // non-empty: /v1/*, /tokenize, /detokenize need "Authorization: Bearer <key>"
  int64_t http_threads = 64;    // connections served at once (each streamed or waiting request holds one)
  std::string model_name;       // the name clients send as "model"; empty: the engine's model_name()
};

// Routes: POST /v1/completions, POST /v1/chat/completions, GET /v1/models, GET /health, GET /metrics,
// POST /tokenize, POST /detokenize.
class HttpServer {
 public:
  explicit HttpServer(ServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Until an engine is attached /health answers 503 and the API 503 (the server can listen while the model loads).
  void attach(Engine& engine);
  // Binds host:port (port 0: any free port) and returns the bound port; Error when it cannot bind.
  int bind(const std::string& host, int port);
  // Accepts connections until stop(); returns once the requests already accepted are answered. Ignores SIGPIPE.
  void serve();
  // Stops accepting new connections; thread-safe (call it from a signal-handling thread).
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace stepwise::http
