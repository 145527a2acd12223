// Implementation of benchmark loading and prompt building (see benchmark.h).
#include "eval/benchmark.h"

#include <algorithm>
#include <optional>
#include <set>
#include <unordered_map>

#include "core/error.h"
#include "eval/utf8.h"

namespace stepwise::eval {

namespace {

const std::string kSingleChoice = "单项选择题";
const std::string kMultiChoice = "多项选择题";

bool is_blank(const std::string& s) {
  for (char32_t c : utf8_decode(s))
    if (!(c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == 0x3000)) return false;
  return true;
}

// An optional string field: absent or null gives "", a non-string is an error.
std::string optional_string(const json& record, const char* field, const std::string& where) {
  auto it = record.find(field);
  if (it == record.end() || it->is_null()) return "";
  if (!it->is_string()) fail(where, ": field '", field, "' must be a string, got ", it->type_name());
  return it->get<std::string>();
}

std::string required_text(const json& record, const char* field, const std::string& where) {
  if (!record.contains(field)) fail(where, ": missing field '", field, "'");
  std::string text = optional_string(record, field, where);
  if (is_blank(text)) fail(where, ": field '", field, "' is empty");
  return text;
}

// The record's id, or "" when it has none (the loader then names it by its line).
std::string record_id(const json& record, const std::string& where) {
  auto it = record.find("id");
  if (it == record.end() || it->is_null()) return "";
  if (it->is_string()) {
    if (it->get<std::string>().empty()) fail(where, ": field 'id' is empty");
    return it->get<std::string>();
  }
  if (it->is_number_integer()) return std::to_string(it->get<int64_t>());
  fail(where, ": field 'id' must be a string or an integer, got ", it->type_name());
}

// Maps 'A'..'E' and full-width 'Ａ'..'Ｅ' to 'A'..'E'; anything else to 0.
char option_letter(char32_t c) {
  c = fold_full_width(c);
  return (c >= U'A' && c <= U'E') ? static_cast<char>(c) : 0;
}

QuestionType parse_question_type(const json& record, const std::string& where) {
  if (!record.contains("question_type")) fail(where, ": missing field 'question_type'");
  const std::string name = optional_string(record, "question_type", where);
  if (name == kSingleChoice) return QuestionType::single_choice;
  if (name == kMultiChoice) return QuestionType::multi_choice;
  fail(where, ": field 'question_type' is '", name, "'; expected '", kSingleChoice, "' or '", kMultiChoice, "'");
}

std::vector<McqOption> parse_options(const json& record, const std::string& where) {
  auto it = record.find("option");
  if (it == record.end()) fail(where, ": missing field 'option'");
  if (!it->is_object()) fail(where, ": field 'option' must be an object {\"A\": text, ...}, got ", it->type_name());
  std::vector<McqOption> options;
  for (const auto& [key, value] : it->items()) {
    const std::u32string cps = utf8_decode(key);
    const char letter = cps.size() == 1 ? option_letter(cps[0]) : 0;
    if (!letter) fail(where, ": field 'option' has key '", key, "'; option keys are the letters A-E");
    if (!value.is_string()) fail(where, ": field 'option.", key, "' must be a string, got ", value.type_name());
    const std::string text = value.get<std::string>();
    if (is_blank(text)) continue;  // CMB pads some questions with empty options
    for (const McqOption& o : options)
      if (o.letter == letter) fail(where, ": field 'option' has option ", letter, " twice");
    options.push_back({letter, text});
  }
  std::sort(options.begin(), options.end(), [](const McqOption& a, const McqOption& b) { return a.letter < b.letter; });
  if (options.size() < 2) fail(where, ": field 'option' has ", options.size(), " non-empty options; need at least 2");
  return options;
}

std::string parse_answer(const json& record, const std::vector<McqOption>& options, QuestionType type,
                         const std::string& where) {
  const std::string raw = required_text(record, "answer", where);
  std::set<char> letters;
  for (char32_t c : utf8_decode(raw)) {
    if (c == ' ' || c == ',' || c == 0xFF0C || c == 0x3001) continue;  // "A,B" / "A，B" / "A、B"
    const char letter = option_letter(c);
    if (!letter) fail(where, ": field 'answer' is '", raw, "'; expected option letters A-E such as \"D\" or \"ABD\"");
    const bool has_option =
        std::any_of(options.begin(), options.end(), [&](const McqOption& o) { return o.letter == letter; });
    if (!has_option) fail(where, ": field 'answer' names option ", letter, " but field 'option' has no ", letter);
    letters.insert(letter);
  }
  if (letters.empty()) fail(where, ": field 'answer' has no option letter");
  if (type == QuestionType::single_choice && letters.size() > 1)
    fail(where, ": field 'answer' is '", raw, "' (", letters.size(), " letters) but question_type is ", kSingleChoice);
  return std::string(letters.begin(), letters.end());
}

template <class Item>
void check_unique_ids(const std::vector<Item>& items, const fs::path& path) {
  std::unordered_map<std::string, int64_t> first_line;
  for (const Item& item : items) {
    auto [it, inserted] = first_line.emplace(item.id, item.line);
    if (!inserted)
      fail(path.string(), ":", item.line, ": field 'id' '", item.id, "' repeats the id of line ", it->second);
  }
}

template <class Item, class Parse>
std::vector<Item> load_items(const fs::path& path, Parse parse) {
  std::vector<Item> items;
  jsonl_for_each(path, [&](const json& record, int64_t line) {
    const std::string where = cat(path.string(), ":", line);
    if (!record.is_object()) fail(where, ": a record must be a JSON object, got ", record.type_name());
    Item item = parse(record, where);
    item.line = line;
    if (item.id.empty()) item.id = cat("line ", line);
    items.push_back(std::move(item));
  });
  if (items.empty()) fail(path.string(), ": no records");
  check_unique_ids(items, path);
  return items;
}

}  // namespace

const char* question_type_name(QuestionType type) {
  return type == QuestionType::single_choice ? kSingleChoice.c_str() : kMultiChoice.c_str();
}

std::string McqItem::option_letters() const {
  std::string letters;
  for (const McqOption& o : options) letters.push_back(o.letter);
  return letters;
}

McqItem parse_mcq_record(const json& record, const std::string& where) {
  if (!record.is_object()) fail(where, ": a record must be a JSON object, got ", record.type_name());
  McqItem item;
  item.id = record_id(record, where);
  item.exam_type = optional_string(record, "exam_type", where);
  item.exam_class = optional_string(record, "exam_class", where);
  item.exam_subject = optional_string(record, "exam_subject", where);
  item.question = required_text(record, "question", where);
  item.type = parse_question_type(record, where);
  item.options = parse_options(record, where);
  item.answer = parse_answer(record, item.options, item.type, where);
  return item;
}

QaItem parse_qa_record(const json& record, const std::string& where) {
  if (!record.is_object()) fail(where, ": a record must be a JSON object, got ", record.type_name());
  QaItem item;
  item.id = record_id(record, where);
  item.question = required_text(record, "question", where);
  item.answer = required_text(record, "answer", where);
  return item;
}

std::vector<McqItem> load_mcq_benchmark(const fs::path& path) {
  return load_items<McqItem>(path, parse_mcq_record);
}

std::vector<QaItem> load_qa_benchmark(const fs::path& path) { return load_items<QaItem>(path, parse_qa_record); }

BenchmarkKind detect_benchmark_kind(const fs::path& path) {
  std::optional<BenchmarkKind> kind;
  struct FirstRecordSeen {};
  try {
    jsonl_for_each(path, [&](const json& record, int64_t line) {
      if (record.is_object() && record.contains("option")) kind = BenchmarkKind::mcq;
      else if (record.is_object() && record.contains("question") && record.contains("answer")) kind = BenchmarkKind::qa;
      else fail(path.string(), ":", line, ": neither a multiple-choice record (with 'option') nor a QA record ",
                "(with 'question' and 'answer')");
      throw FirstRecordSeen{};  // stop reading: the first record decides
    });
  } catch (const FirstRecordSeen&) {
  }
  if (!kind) fail(path.string(), ": no records");
  return *kind;
}

std::string mcq_prompt(const McqItem& item) {
  std::string exam;
  if (!item.exam_type.empty() || !item.exam_class.empty()) exam = cat("中国", item.exam_type, item.exam_class, "考试中的");
  const bool multi = item.type == QuestionType::multi_choice;
  std::string prompt = cat("以下是", exam, "一道", question_type_name(item.type));
  if (!item.exam_subject.empty()) prompt += cat("（科目：", item.exam_subject, "）");
  prompt += multi ? "，正确选项不止一个，请直接给出所有正确选项的字母。\n"
                  : "，请直接给出唯一正确选项的字母。\n";
  prompt += item.question;
  prompt += "\n";
  for (const McqOption& o : item.options) prompt += cat(o.letter, ". ", o.text, "\n");
  prompt += "答案：";
  return prompt;
}

std::vector<std::string> mcq_continuations(const McqItem& item, ContinuationStyle style) {
  std::vector<std::string> out;
  for (const McqOption& o : item.options)
    out.push_back(style == ContinuationStyle::letter ? std::string(1, o.letter) : o.text);
  return out;
}

}  // namespace stepwise::eval
