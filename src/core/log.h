// Minimal leveled logging to stderr: SW_LOG_INFO(...) streams its arguments on one line with a level tag.
// Level comes from STEPWISE_LOG (debug|info|warn|error); the default is info.
#pragma once
#include "core/error.h"

namespace stepwise {

enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3 };

LogLevel log_level();
void log_line(LogLevel level, const std::string& message);

template <class... Args>
void log_info(const Args&... args) { if (log_level() <= LogLevel::info) log_line(LogLevel::info, cat(args...)); }
template <class... Args>
void log_warn(const Args&... args) { if (log_level() <= LogLevel::warn) log_line(LogLevel::warn, cat(args...)); }
template <class... Args>
void log_debug(const Args&... args) { if (log_level() <= LogLevel::debug) log_line(LogLevel::debug, cat(args...)); }

}  // namespace stepwise
