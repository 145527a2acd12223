// Importers of multiple-choice exams into the mcq schema (CMB-Exam's): CMB-Exam JSON lines, CMExam CSV rows and
// MedQA (MCMLE) JSON lines. Options must be letters A-Z with non-empty texts; answers must name existing options.
#include "core/error.h"
#include "data/import_record.h"

namespace stepwise::import_detail {

static json mcq_record(std::string id, std::string exam_type, std::string exam_class, std::string exam_subject,
                       std::string question, json options, const std::string& answer, std::string question_type) {
  return json{{"id", std::move(id)},
              {"exam_type", std::move(exam_type)},
              {"exam_class", std::move(exam_class)},
              {"exam_subject", std::move(exam_subject)},
              {"question", std::move(question)},
              {"option", std::move(options)},
              {"answer", answer},
              {"question_type", std::move(question_type)}};
}

// ---------------------------------------------------------------------------------------------- CMB-Exam

Converted convert_cmb(const json& record, const RecordContext& ctx) {
  require_object_record(record);
  const std::string id = record_id(record, ctx);
  std::string question = require_string(record, "question");
  json options = validate_options(require_object(record, "option", "option"), "option");
  const std::string answer = validate_answer(require_string(record, "answer"), options, "answer");
  std::string question_type = require_string(record, "question_type");
  if (question_type != "单项选择题" && question_type != "多项选择题")
    bad_record("field 'question_type' is neither 单项选择题 nor 多项选择题", cat("'", question_type, "'"));
  if (question_type == "单项选择题" && answer.size() != 1)
    bad_record("field 'answer' has several letters for a 单项选择题", cat("'", answer, "'"));
  Converted out;
  out.main.push_back(mcq_record(id, optional_string(record, "exam_type"), optional_string(record, "exam_class"),
                                optional_string(record, "exam_subject"), std::move(question), std::move(options),
                                answer, std::move(question_type)));
  return out;
}

// ---------------------------------------------------------------------------------------------- MedQA

Converted convert_medqa(const json& record, const RecordContext& ctx) {
  require_object_record(record);
  const std::string id = record_id(record, ctx);
  std::string question = require_string(record, "question");
  json options = validate_options(require_object(record, "options", "options"), "options");
  const std::string answer = validate_answer(require_string(record, "answer_idx"), options, "answer_idx");
  if (answer.size() != 1) bad_record("field 'answer_idx' is not a single letter", cat("'", answer, "'"));
  const std::string answer_text = require_string(record, "answer");
  if (answer_text != options[answer].get<std::string>())
    bad_record("field 'answer' differs from the option that 'answer_idx' names",
               cat("'", answer_text, "' vs. option ", answer, " '", options[answer].get<std::string>(), "'"));
  Converted out;
  out.main.push_back(mcq_record(id, "MedQA", optional_string(record, "meta_info"), "", std::move(question),
                                std::move(options), answer, question_type_for(answer)));
  return out;
}

// ---------------------------------------------------------------------------------------------- CMExam

static const char* const kCmexamRequired[] = {"Question", "Options", "Answer"};

void check_cmexam_header(const std::vector<std::string>& header, const std::string& file) {
  for (const char* column : kCmexamRequired) {
    bool found = false;
    for (const std::string& h : header) found = found || h == column;
    if (!found) fail(file, ":1: CSV header lacks the column '", column, "'");
  }
}

// Strips the separator after an option letter: whitespace, '.', ':', '、', '．', '：', ')', '）'.
static bool strip_option_separator(std::string_view& rest) {
  bool stripped = false;
  for (;;) {
    if (!rest.empty() && (rest[0] == ' ' || rest[0] == '\t' || rest[0] == '.' || rest[0] == ':' || rest[0] == ')')) {
      rest.remove_prefix(1);
    } else if (rest.substr(0, 3) == "、" || rest.substr(0, 3) == "．" || rest.substr(0, 3) == "：" ||
               rest.substr(0, 3) == "）" || rest.substr(0, 3) == "\xE3\x80\x80") {
      rest.remove_prefix(3);
    } else {
      return stripped;
    }
    stripped = true;
  }
}

// "A 选项一\nB 选项二\n..." -> {"A": "选项一", "B": "选项二", ...}
static json parse_cmexam_options(const std::string& text) {
  json options = json::object();
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    const std::string line = trim_text(std::string_view(text).substr(start, end - start));
    start = end + 1;
    if (line.empty()) continue;
    std::string_view rest(line);
    const char letter = rest[0];
    rest.remove_prefix(1);
    if (letter < 'A' || letter > 'Z' || !strip_option_separator(rest))
      bad_record("field 'Options' has a line that is not 'LETTER text'", cat("'", line, "'"));
    const std::string key(1, letter);
    if (options.contains(key)) bad_record("field 'Options' repeats a letter", cat("'", key, "'"));
    options[key] = std::string(rest);
  }
  if (options.empty()) bad_record("field 'Options' is empty");
  return validate_options(options, "Options");
}

Converted convert_cmexam(const std::vector<std::string>& header, const std::vector<std::string>& fields,
                         const RecordContext& ctx) {
  json row = json::object();
  for (size_t i = 0; i < header.size() && i < fields.size(); ++i) {
    if (!is_valid_utf8(fields[i])) bad_record(cat("field '", header[i], "' is not valid UTF-8"));
    row[header[i]] = fields[i];
  }
  std::string question = require_string(row, "Question");
  json options = parse_cmexam_options(require_string(row, "Options"));
  const std::string answer = validate_answer(require_string(row, "Answer"), options, "Answer");
  Converted out;
  out.main.push_back(mcq_record(ctx.fallback_id, "CMExam", optional_string(row, "Clinical Department"),
                                optional_string(row, "Disease Group"), std::move(question), std::move(options), answer,
                                question_type_for(answer)));
  return out;
}

}  // namespace stepwise::import_detail
