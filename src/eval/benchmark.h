// Benchmark files of `stepwise eval`: multiple-choice exams in the CMB-Exam schema and open QA pairs, loaded into
// validated records (errors name FILE:LINE and the field), plus the prompt texts sent to a model for each item.
// No HTTP and no model here: a runner sends these prompts and hands the replies to scoring.h.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/fs.h"
#include "data/jsonl.h"

namespace stepwise::eval {

enum class QuestionType { single_choice, multi_choice };

// "单项选择题" / "多项选择题" (the CMB-Exam spelling), as written in benchmark files and reports.
const char* question_type_name(QuestionType type);

struct McqOption {
  char letter = 'A';  // 'A'..'E'
  std::string text;   // non-empty
};

// One CMB-Exam record: {"id","exam_type","exam_class","exam_subject","question","option":{"A":..},"answer",
// "question_type"}. `options` are in letter order; options whose text is empty in the file are left out.
struct McqItem {
  std::string id;            // the file's "id" (string or integer); "line N" when the file has none
  std::string exam_type;     // e.g. "医师考试" (may be empty)
  std::string exam_class;    // e.g. "执业医师" (may be empty)
  std::string exam_subject;  // e.g. "内科" — the group accuracy is broken down by (may be empty)
  std::string question;
  std::vector<McqOption> options;
  std::string answer;  // sorted unique ASCII letters: "D" or "ABD"
  QuestionType type = QuestionType::single_choice;
  int64_t line = 0;  // line in the benchmark file, for messages

  std::string option_letters() const;  // e.g. "ABCDE"
};

// One open-QA record: {"id","question","answer"}.
struct QaItem {
  std::string id;
  std::string question;
  std::string answer;  // the reference text
  int64_t line = 0;
};

// Validates one record (its id is left "" when it has none); `where` ("FILE:LINE") prefixes every error together with the field at fault.
// Rejects: empty question, no options, option keys outside A-E or non-string texts, an answer letter with no option,
// an answer that is empty or not letters, a single-choice answer with several letters, an unknown question_type.
McqItem parse_mcq_record(const json& record, const std::string& where);
QaItem parse_qa_record(const json& record, const std::string& where);

// Loads a whole benchmark file (JSONL). Duplicate ids are an error (results are joined back by id).
std::vector<McqItem> load_mcq_benchmark(const fs::path& path);
std::vector<QaItem> load_qa_benchmark(const fs::path& path);

// Which kind a benchmark file holds, judged by its first record: "option" present -> mcq; "question" and "answer"
// -> qa; anything else is an Error naming FILE:LINE. Lets `stepwise eval --bench FILE` pick the loader.
enum class BenchmarkKind { mcq, qa };
BenchmarkKind detect_benchmark_kind(const fs::path& path);

// The prompt for answering by generation: a one-line instruction naming the exam and question type, the question,
// one "A. text" line per option, and a final "答案：" so that a base model continues with the letter(s).
std::string mcq_prompt(const McqItem& item);

// What is scored after mcq_prompt(item) when judging by likelihood (one string per option, in option order):
//   letter:      the option letter alone ("A"); since the prompt ends with "答案：" this scores "答案：A". All
//                continuations have the same length, so length normalisation changes nothing. The default.
//   option_text: the option's own text ("阿司匹林"); lengths differ, so length normalisation matters.
enum class ContinuationStyle { letter, option_text };
std::vector<std::string> mcq_continuations(const McqItem& item, ContinuationStyle style = ContinuationStyle::letter);

}  // namespace stepwise::eval
