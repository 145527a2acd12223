// JSON Lines I/O with line numbers: every record error names FILE:LINE. Writers go through an atomic temp file.
#pragma once
#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <vector>

#include "core/fs.h"

namespace stepwise {

using json = nlohmann::json;

// Calls `fn(record, line_number)` for each non-blank line. Invalid JSON throws Error("FILE:LINE: invalid JSON: ...").
void jsonl_for_each(const fs::path& path, const std::function<void(const json&, int64_t)>& fn);

// Reads every record (blank lines skipped).
std::vector<json> jsonl_read(const fs::path& path);

// Writes records one per line (UTF-8, no ASCII escaping), atomically.
void jsonl_write(const fs::path& path, const std::vector<json>& records);

}  // namespace stepwise
