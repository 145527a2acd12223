// Implementation of corpus statistics (see corpus_stats.h).
#include "data/corpus_stats.h"

#include <algorithm>
#include <cstdio>
#include <set>

#include "data/corpus_generate.h"
#include "data/corpus_text.h"
#include "data/jsonl.h"

namespace stepwise {
namespace {

const std::set<std::string>& bookkeeping_keys() {
  static const std::set<std::string> keys = {"id",         "department",   "source",       "reason",
                                             "role",       "exam_type",    "exam_class",   "exam_subject",
                                             "question_type"};
  return keys;
}

int64_t han_in(const nlohmann::json& value) {
  if (value.is_string()) return count_han_chars(value.get_ref<const std::string&>());
  int64_t n = 0;
  if (value.is_array())
    for (const auto& v : value) n += han_in(v);
  if (value.is_object())
    for (auto it = value.begin(); it != value.end(); ++it)
      if (!bookkeeping_keys().count(it.key())) n += han_in(it.value());
  return n;
}

std::string department_of(const nlohmann::json& record) {
  for (const char* key : {"department", "exam_class"})
    if (record.is_object() && record.contains(key) && record[key].is_string()) return record[key].get<std::string>();
  return "-";
}

}  // namespace

int64_t record_chinese_chars(const nlohmann::json& record) { return han_in(record); }

CorpusStats compute_corpus_stats(const fs::path& dir) {
  if (!fs::is_directory(dir)) fail(dir.string(), ": corpus directory not found");
  CorpusStats stats;
  for (const char* file : kCorpusFiles) {
    const fs::path path = dir / file;
    if (!fs::exists(path)) continue;
    SplitStats s;
    s.file = file;
    jsonl_for_each(path, [&](const nlohmann::json& record, int64_t) {
      ++s.records;
      s.chinese_chars += record_chinese_chars(record);
      ++s.departments[department_of(record)];
    });
    stats.splits.push_back(std::move(s));
  }
  if (stats.splits.empty()) fail(dir.string(), ": no corpus files (pretrain.jsonl, sft.jsonl, ...)");
  return stats;
}

std::string format_corpus_stats(const CorpusStats& stats) {
  std::string out;
  char line[256];
  std::snprintf(line, sizeof line, "%-18s %10s %14s\n", "split", "records", "chinese_chars");
  out += line;
  int64_t records = 0, chars = 0;
  for (const auto& s : stats.splits) {
    std::snprintf(line, sizeof line, "%-18s %10lld %14lld\n", s.file.c_str(), static_cast<long long>(s.records),
                  static_cast<long long>(s.chinese_chars));
    out += line;
    records += s.records;
    chars += s.chinese_chars;
  }
  std::snprintf(line, sizeof line, "%-18s %10lld %14lld\n", "total", static_cast<long long>(records),
                static_cast<long long>(chars));
  out += line;
  for (const auto& s : stats.splits) {
    out += "\n" + s.file + " by department:\n";
    for (const auto& [department, count] : s.departments) out += cat("  ", department, "  ", count, "\n");
  }
  return out;
}

}  // namespace stepwise
