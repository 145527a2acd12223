// The HTTP server: the flat route table, the one exception wrapper (error -> status code + OpenAI error body),
// bearer-token auth, and the listen / stop lifecycle over cpp-httplib.
#include "serve/http/server.h"

#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <thread>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "serve/http/api_error.h"
#include "serve/http/handlers.h"
#include "serve/http/requests.h"

namespace stepwise::http {
namespace {

using Handler = void (*)(ServerContext&, const httplib::Request&, httplib::Response&);

struct Route {
  const char* method;  // "GET" | "POST"
  const char* path;
  bool needs_auth;     // when an API key is configured
  Handler handler;
};

// Every endpoint of the server. /health and /metrics stay open for probes and scrapers.
constexpr Route kRoutes[] = {
    {"POST", "/v1/completions", true, handle_completions},
    {"POST", "/v1/chat/completions", true, handle_chat_completions},
    {"GET", "/v1/models", true, handle_models},
    {"POST", "/tokenize", true, handle_tokenize},
    {"POST", "/detokenize", true, handle_detokenize},
    {"GET", "/health", false, handle_health},
    {"GET", "/metrics", false, handle_metrics},
};

void write_error(httplib::Response& response, int status, const std::string& message, const std::string& type,
                 const std::string& param, const std::string& code) {
  response.status = status;
  response.set_content(dump_json(error_body(message, type, param, code)), "application/json");
}

// Constant-time comparison so the key cannot be found byte by byte from response times.
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char difference = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) difference |= uint8_t(a[i]) ^ uint8_t(i < b.size() ? b[i] : 0);
  return difference == 0;
}

void check_auth(const ServerContext& context, const httplib::Request& request) {
  if (context.options.api_key.empty()) return;
  const std::string header = request.get_header_value("Authorization");
  const std::string prefix = "Bearer ";
  if (header.rfind(prefix, 0) != 0 || !same_secret(header.substr(prefix.size()), context.options.api_key))
    throw ApiError(401, "Incorrect or missing API key: send 'Authorization: Bearer <key>'", "invalid_request_error",
                   "invalid_api_key");
}

// The one place where exceptions become responses.
void run_route(ServerContext& context, const Route& route, const httplib::Request& request, httplib::Response& response) {
  try {
    if (route.needs_auth) check_auth(context, request);
    route.handler(context, request, response);
  } catch (const RequestError& e) {
    write_error(response, 400, e.what(), "invalid_request_error", e.param(), "");
  } catch (const ApiError& e) {
    write_error(response, e.status(), e.what(), e.type(), e.param(), e.code());
  } catch (const QueueFull& e) {
    response.set_header("Retry-After", "1");
    write_error(response, 429, cat("the server is busy: ", e.what()), "rate_limit_error", "", "rate_limit_exceeded");
  } catch (const std::invalid_argument& e) {  // the engine's validation
    write_error(response, 400, e.what(), "invalid_request_error", "", "");
  } catch (const nlohmann::json::exception& e) {
    write_error(response, 400, e.what(), "invalid_request_error", "", "");
  } catch (const Error& e) {  // stepwise's bad-input error (e.g. from the tokenizer)
    write_error(response, 400, e.what(), "invalid_request_error", "", "");
  } catch (const std::exception& e) {
    write_error(response, 500, cat("internal error: ", e.what()), "server_error", "", "");
  }
}

// httplib 0.11 listens with a backlog of 5: a burst of concurrent clients overflows it (dropped handshakes, 1 s
// retransmits, failed reads). Listening again on the bound socket raises the backlog (Linux allows this).
class ListeningServer : public httplib::Server {
 public:
  void raise_backlog(int backlog) {
    if (::listen(svr_sock_, backlog) != 0) fail("listen(backlog ", backlog, ") failed on the bound socket");
  }
};

constexpr int kListenBacklog = 1024;

}  // namespace

struct HttpServer::Impl {
  ServerContext context;
  ListeningServer server;
  std::atomic<bool> stop_requested{false};
  std::atomic<bool> serving{false};  // inside serve()
};

HttpServer::HttpServer(ServerOptions options) : impl_(std::make_unique<Impl>()) {
  if (options.http_threads < 1) fail("http threads must be >= 1 (got ", options.http_threads, ")");
  impl_->context.options = std::move(options);
  impl_->context.started_at = unix_seconds();
  ServerContext& context = impl_->context;
  httplib::Server& server = impl_->server;
  const size_t threads = size_t(context.options.http_threads);
  server.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  server.set_keep_alive_timeout(2);
  server.set_payload_max_length(size_t(16) << 20);
  for (const Route& route : kRoutes) {
    auto handler = [&context, &route](const httplib::Request& request, httplib::Response& response) {
      run_route(context, route, request, response);
    };
    if (std::string(route.method) == "GET") server.Get(route.path, handler);
    else server.Post(route.path, handler);
  }
  // Called for every error status; fills only responses that have no body yet (unknown route, malformed HTTP).
  server.set_error_handler([](const httplib::Request& request, httplib::Response& response) {
    if (!response.body.empty()) return;
    const std::string message = response.status == 404 ? cat("no route for ", request.method, " ", request.path)
                                                       : cat("HTTP error ", response.status);
    write_error(response, response.status, message, "invalid_request_error", "", "");
  });
  server.set_logger([&context](const httplib::Request&, const httplib::Response& response) {
    context.metrics.count_response(response.status);
  });
}

HttpServer::~HttpServer() = default;

void HttpServer::attach(Engine& engine) { impl_->context.engine.store(&engine); }

int HttpServer::bind(const std::string& host, int port) {
  if (port < 0 || port > 65535) fail("port must be in [0, 65535] (got ", port, ")");
  if (port == 0) {
    const int bound = impl_->server.bind_to_any_port(host);
    if (bound <= 0) fail("cannot bind ", host, " on any port");
    impl_->server.raise_backlog(kListenBacklog);
    return bound;
  }
  if (!impl_->server.bind_to_port(host, port)) fail("cannot bind ", host, ":", port, " (in use, or not a local address)");
  impl_->server.raise_backlog(kListenBacklog);
  return port;
}

void HttpServer::serve() {
  std::signal(SIGPIPE, SIG_IGN);  // a client gone mid-write must be an error return, not the end of the process
  impl_->serving = true;
  if (!impl_->stop_requested) impl_->server.listen_after_bind();
  impl_->serving = false;
}

// httplib's stop() does nothing before its listen loop runs, so a stop() racing a starting serve() waits for the
// loop to start (or for serve() to see the request and return) before stopping it.
void HttpServer::stop() {
  impl_->stop_requested = true;
  while (impl_->serving && !impl_->server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  impl_->server.stop();
}

}  // namespace stepwise::http
