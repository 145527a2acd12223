// Errors of stepwise: one exception type carrying a user-facing message that names the file/line/field at fault.
// Code that detects bad input throws stepwise::Error; the CLI turns it into "error: <message>" and exit code 2.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace stepwise {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Concatenates any streamable values: cat("line ", 3, ": bad") == "line 3: bad". (g++ 12 has no <format>.)
template <class... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}

// Throws Error with the concatenated message: fail(path, ":", line, ": field 'text' is empty").
template <class... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(cat(args...));
}

}  // namespace stepwise

// Internal invariant check (a bug, not bad input): throws std::logic_error naming the source location.
#define SW_CHECK(cond)                                                                              \
  do {                                                                                              \
    if (!(cond))                                                                                    \
      throw std::logic_error(std::string(__FILE__) + ":" + std::to_string(__LINE__) + ": check failed: " #cond); \
  } while (0)
