// Implementation of the stderr logger (see log.h).
#include "core/log.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

namespace stepwise {

LogLevel log_level() {
  static const LogLevel level = [] {
    const char* s = std::getenv("STEPWISE_LOG");
    if (!s) return LogLevel::info;
    if (!std::strcmp(s, "debug")) return LogLevel::debug;
    if (!std::strcmp(s, "warn")) return LogLevel::warn;
    if (!std::strcmp(s, "error")) return LogLevel::error;
    return LogLevel::info;
  }();
  return level;
}

void log_line(LogLevel level, const std::string& message) {
  static std::mutex mu;
  static const char* tags[] = {"debug", "info", "warn", "error"};
  std::lock_guard<std::mutex> lock(mu);
  std::fprintf(stderr, "[%s] %s\n", tags[static_cast<int>(level)], message.c_str());
}

}  // namespace stepwise
