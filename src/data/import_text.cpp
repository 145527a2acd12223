// Importer of pretraining text: each line is one document, either plain text or a JSON object {"text": ...}
// (a line whose first non-space character is '{' is read as JSON). Output: pretrain records {id, text, source, department}.
#include "core/error.h"
#include "data/import_record.h"

namespace stepwise::import_detail {

static bool looks_like_json_object(std::string_view line) {
  const size_t first = line.find_first_not_of(" \t");
  return first != std::string_view::npos && line[first] == '{';
}

Converted convert_text_line(std::string_view line, const RecordContext& ctx) {
  Converted out;
  if (!looks_like_json_object(line)) {
    if (!is_valid_utf8(line)) bad_record("line is not valid UTF-8");
    out.main.push_back(
        json{{"id", ctx.fallback_id}, {"text", trim_text(line)}, {"source", ctx.source}, {"department", ""}});
    return out;
  }
  json record;
  try {
    record = json::parse(line);
  } catch (const json::parse_error& e) {
    bad_record("invalid JSON", e.what());
  }
  require_object_record(record);
  std::string source = optional_string(record, "source");
  out.main.push_back(json{{"id", record_id(record, ctx)},
                          {"text", require_string(record, "text")},
                          {"source", source.empty() ? ctx.source : source},
                          {"department", optional_string(record, "department")}});
  return out;
}

}  // namespace stepwise::import_detail
