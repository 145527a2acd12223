// Statistics of a corpus directory (the files write_corpus produces): per split, records, Han characters and a
// department histogram. Used by `stepwise data stats`; token counts are added by the caller when a tokenizer is given.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/fs.h"

namespace stepwise {

struct SplitStats {
  std::string file;                               // "pretrain.jsonl"
  int64_t records = 0;
  int64_t chinese_chars = 0;                      // Han characters in the record's text fields
  int64_t tokens = 0;                             // tokens of those text fields (when a tokenizer was given)
  std::map<std::string, int64_t> departments;     // "department" (or MCQ "exam_class"); "-" when absent
};

struct CorpusStats {
  std::vector<SplitStats> splits;                 // the corpus files present, in kCorpusFiles order
  bool tokenizer_counted = false;                 // SplitStats::tokens are filled
};

class Tokenizer;

// Reads every corpus file present in `dir`; throws Error when none is (or a record is not valid JSON). With a
// tokenizer, also counts the tokens of every text field (encoded literally, as chat contents are).
CorpusStats compute_corpus_stats(const fs::path& dir, const Tokenizer* tokenizer = nullptr);

// Han characters in the text a record carries: every string value except bookkeeping fields (id, department,
// source, reason, role, exam_type, exam_class, exam_subject, question_type, answer letters of MCQs).
int64_t record_chinese_chars(const nlohmann::json& record);

// A plain-text table: one row per split, then each split's department histogram.
std::string format_corpus_stats(const CorpusStats& stats);

}  // namespace stepwise
