// Implementation of JSON Lines I/O (see jsonl.h).
#include "data/jsonl.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "core/error.h"

namespace stepwise {

void jsonl_for_each(const fs::path& path, const std::function<void(const json&, int64_t)>& fn) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(path.string(), ": cannot open: ", std::strerror(errno));
  std::string line;
  int64_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    json record;
    try {
      record = json::parse(line);
    } catch (const json::parse_error& e) {
      fail(path.string(), ":", line_no, ": invalid JSON: ", e.what());
    }
    fn(record, line_no);
  }
}

std::vector<json> jsonl_read(const fs::path& path) {
  std::vector<json> out;
  jsonl_for_each(path, [&](const json& r, int64_t) { out.push_back(r); });
  return out;
}

void jsonl_write(const fs::path& path, const std::vector<json>& records) {
  write_file_atomic_with(path, [&](std::FILE* f) {
    for (const json& r : records) {
      std::string s = r.dump(-1, ' ', false, json::error_handler_t::strict);
      s.push_back('\n');
      if (std::fwrite(s.data(), 1, s.size(), f) != s.size()) fail(path.string(), ": write failed");
    }
  });
}

}  // namespace stepwise
