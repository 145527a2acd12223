// The route handlers of the HTTP server, one per endpoint. They parse, validate, post to the engine and write the
// response; errors are thrown and turned into status codes by the server's one wrapper (server.cpp).
#pragma once
#include <httplib.h>

#include "serve/http/server_context.h"

namespace stepwise::http {

// generation_handlers.cpp
void handle_completions(ServerContext& context, const httplib::Request& request, httplib::Response& response);
void handle_chat_completions(ServerContext& context, const httplib::Request& request, httplib::Response& response);

// info_handlers.cpp
void handle_models(ServerContext& context, const httplib::Request& request, httplib::Response& response);
void handle_health(ServerContext& context, const httplib::Request& request, httplib::Response& response);
void handle_metrics(ServerContext& context, const httplib::Request& request, httplib::Response& response);
void handle_tokenize(ServerContext& context, const httplib::Request& request, httplib::Response& response);
void handle_detokenize(ServerContext& context, const httplib::Request& request, httplib::Response& response);

}  // namespace stepwise::http
