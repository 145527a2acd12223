// An error answered with a specific HTTP status and OpenAI error type (401 auth, 404 unknown model, 503 not ready).
// Thrown by handlers and turned into a response by the server's one exception wrapper; 400s use RequestError.
#pragma once
#include <stdexcept>
#include <string>

namespace stepwise::http {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, const std::string& message, std::string type, std::string code = "", std::string param = "")
      : std::runtime_error(message), status_(status), type_(std::move(type)), code_(std::move(code)), param_(std::move(param)) {}
  int status() const { return status_; }
  const std::string& type() const { return type_; }
  const std::string& code() const { return code_; }
  const std::string& param() const { return param_; }

 private:
  int status_;
  std::string type_, code_, param_;
};

}  // namespace stepwise::http
