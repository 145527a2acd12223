// Implementation of corpus statistics (see corpus_stats.h).
#include "data/corpus_stats.h"

#include <algorithm>
#include <cstdio>
#include <functional>
#include <set>

#include "data/corpus_generate.h"
#include "data/corpus_text.h"
#include "data/jsonl.h"
#include "data/tokenizer.h"

namespace stepwise {
namespace {

const std::set<std::string>& bookkeeping_keys() {
  static const std::set<std::string> keys = {"id",         "department",   "source",       "reason",
                                             "role",       "exam_type",    "exam_class",   "exam_subject",
                                             "question_type"};
  return keys;
}

// Sum of `count(text)` over the record's text values (bookkeeping fields excluded).
int64_t sum_over_text(const nlohmann::json& value, const std::function<int64_t(const std::string&)>& count) {
  if (value.is_string()) return count(value.get_ref<const std::string&>());
  int64_t n = 0;
  if (value.is_array())
    for (const auto& v : value) n += sum_over_text(v, count);
  if (value.is_object())
    for (auto it = value.begin(); it != value.end(); ++it)
      if (!bookkeeping_keys().count(it.key())) n += sum_over_text(it.value(), count);
  return n;
}

int64_t han_in(const nlohmann::json& value) { return sum_over_text(value, count_han_chars); }

std::string department_of(const nlohmann::json& record) {
  for (const char* key : {"department", "exam_class"})
    if (record.is_object() && record.contains(key) && record[key].is_string()) return record[key].get<std::string>();
  return "-";
}

}  // namespace

int64_t record_chinese_chars(const nlohmann::json& record) { return han_in(record); }

CorpusStats compute_corpus_stats(const fs::path& dir, const Tokenizer* tokenizer) {
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
      if (tokenizer)
        s.tokens += sum_over_text(record, [&](const std::string& text) {
          return static_cast<int64_t>(tokenizer->encode_literal(text).size());
        });
      ++s.departments[department_of(record)];
    });
    stats.splits.push_back(std::move(s));
  }
  if (stats.splits.empty()) fail(dir.string(), ": no corpus files (pretrain.jsonl, sft.jsonl, ...)");
  stats.tokenizer_counted = tokenizer != nullptr;
  return stats;
}

std::string format_corpus_stats(const CorpusStats& stats) {
  std::string out;
  char line[256];
  const bool tokens = stats.tokenizer_counted;
  std::snprintf(line, sizeof line, "%-18s %10s %14s%s\n", "split", "records", "chinese_chars",
                tokens ? "         tokens" : "");
  out += line;
  int64_t records = 0, chars = 0, toks = 0;
  auto row = [&](const char* name, int64_t r, int64_t c, int64_t t) {
    std::snprintf(line, sizeof line, "%-18s %10lld %14lld", name, static_cast<long long>(r), static_cast<long long>(c));
    out += line;
    if (tokens) {
      std::snprintf(line, sizeof line, " %14lld", static_cast<long long>(t));
      out += line;
    }
    out += "\n";
  };
  for (const auto& s : stats.splits) {
    row(s.file.c_str(), s.records, s.chinese_chars, s.tokens);
    records += s.records;
    chars += s.chinese_chars;
    toks += s.tokens;
  }
  row("total", records, chars, toks);
  for (const auto& s : stats.splits) {
    out += "\n" + s.file + " by department:\n";
    for (const auto& [department, count] : s.departments) out += cat("  ", department, "  ", count, "\n");
  }
  return out;
}

}  // namespace stepwise
