// Internal toolkit of the importers: the BadRecord exception a converter throws for one faulty record, field
// accessors that name the field and what is wrong with it, and text helpers (trim, UTF-8 check, answer letters).
// Converters never know the file or line; the driver (import.cpp) adds "FILE:LINE: " and applies the skip policy.
#pragma once
#include <string>
#include <string_view>
#include <vector>

#include "data/import.h"

namespace stepwise::import_detail {

// One record is bad. `reason` is stable for counting ("field 'answer' is missing"); `detail` adds specifics.
struct BadRecord {
  std::string reason;
  std::string detail;
  std::string message() const { return detail.empty() ? reason : reason + ": " + detail; }
};

[[noreturn]] void bad_record(std::string reason, std::string detail = "");

// What one input record turned into.
struct Converted {
  std::vector<json> main;
  std::vector<json> preference;
};

// Per-record facts the driver hands to converters.
struct RecordContext {
  const ImportOptions& options;
  std::string fallback_id;  // "<file stem>-<line>", used when the record carries no "id"
  std::string source;       // options.source or the file stem
};

// Trims ASCII whitespace, NBSP and the ideographic space U+3000 at both ends.
std::string trim_text(std::string_view s);
bool is_valid_utf8(std::string_view s);

// Field access on a JSON object. `name` is the key; `shown` is how the error names it ("answers[2].answer").
void require_object_record(const json& record);
const json& require_field(const json& obj, const std::string& name, const std::string& shown);
// A non-empty string (after trimming), returned trimmed.
std::string require_string(const json& obj, const std::string& name, const std::string& shown);
std::string require_string(const json& obj, const std::string& name);
// "" when missing or null; a wrong type is still an error. Returned trimmed.
std::string optional_string(const json& obj, const std::string& name);
const json& require_array(const json& obj, const std::string& name, const std::string& shown, bool allow_empty);
const json& require_object(const json& obj, const std::string& name, const std::string& shown);
// A string or integer "id" field if present (converted to a string), otherwise ctx.fallback_id.
std::string record_id(const json& record, const RecordContext& ctx);
[[noreturn]] void wrong_type(const std::string& shown, std::string_view expected, const json& got);

// Multiple choice: validated option map {"A": text, ...} (single upper-case letters, non-empty texts).
json validate_options(const json& options, const std::string& shown);
// Answer letters, whitespace ignored, checked against the options, returned sorted ("BDA" -> "ABD").
std::string validate_answer(const std::string& raw, const json& options, const std::string& shown);
// "单项选择题" for one letter, "多项选择题" for more.
std::string question_type_for(const std::string& answer);

// Converters, one per format (import_chat.cpp, import_text.cpp, import_exam.cpp).
Converted convert_chimed1(const json& record, const RecordContext& ctx);
Converted convert_sharegpt(const json& record, const RecordContext& ctx);
Converted convert_alpaca(const json& record, const RecordContext& ctx);
Converted convert_preference_legacy(const json& record, const RecordContext& ctx);
Converted convert_text_line(std::string_view line, const RecordContext& ctx);
Converted convert_cmb(const json& record, const RecordContext& ctx);
Converted convert_medqa(const json& record, const RecordContext& ctx);

// A CMExam CSV row: `fields` in the order of `header` (same count, checked by the driver).
Converted convert_cmexam(const std::vector<std::string>& header, const std::vector<std::string>& fields,
                         const RecordContext& ctx);
// Throws Error("FILE:1: ...") when the CMExam header lacks a required column.
void check_cmexam_header(const std::vector<std::string>& header, const std::string& file);

}  // namespace stepwise::import_detail
