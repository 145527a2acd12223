// RFC 4180 CSV reader (see import_csv.h): a small state machine over the whole file text.
#include "data/import_csv.h"

namespace stepwise {

CsvReader::CsvReader(std::string text) : text_(std::move(text)) {
  if (text_.compare(0, 3, "\xEF\xBB\xBF") == 0) pos_ = 3;
}

bool CsvReader::at_line_end() const { return pos_ < text_.size() && (text_[pos_] == '\n' || text_[pos_] == '\r'); }

void CsvReader::consume_line_end() {
  if (text_[pos_] == '\r' && pos_ + 1 < text_.size() && text_[pos_ + 1] == '\n') ++pos_;
  ++pos_;
  ++line_;
}

void CsvReader::skip_rest_of_line() {
  while (pos_ < text_.size() && !at_line_end()) ++pos_;
  if (pos_ < text_.size()) consume_line_end();
}

void CsvReader::syntax_error(int64_t line, const char* message) {
  skip_rest_of_line();
  throw CsvSyntaxError{line, message};
}

std::string CsvReader::read_quoted_field(int64_t record_line) {
  std::string field;
  ++pos_;  // opening quote
  for (;;) {
    if (pos_ >= text_.size()) syntax_error(record_line, "unterminated quoted field");
    const char c = text_[pos_];
    if (c == '"') {
      if (pos_ + 1 < text_.size() && text_[pos_ + 1] == '"') {
        field.push_back('"');
        pos_ += 2;
        continue;
      }
      ++pos_;  // closing quote
      break;
    }
    if (c == '\n') ++line_;
    field.push_back(c);
    ++pos_;
  }
  if (pos_ < text_.size() && text_[pos_] != ',' && !at_line_end())
    syntax_error(record_line, "text after a closing quote");
  return field;
}

std::string CsvReader::read_plain_field(int64_t record_line) {
  const size_t start = pos_;
  while (pos_ < text_.size() && text_[pos_] != ',' && !at_line_end()) {
    if (text_[pos_] == '"') syntax_error(record_line, "quote inside an unquoted field");
    ++pos_;
  }
  return text_.substr(start, pos_ - start);
}

bool CsvReader::next(CsvRecord& record) {
  while (at_line_end()) consume_line_end();
  if (pos_ >= text_.size()) return false;
  record.fields.clear();
  record.line = line_;
  for (;;) {
    const bool quoted = pos_ < text_.size() && text_[pos_] == '"';
    record.fields.push_back(quoted ? read_quoted_field(record.line) : read_plain_field(record.line));
    if (pos_ >= text_.size()) return true;
    if (text_[pos_] == ',') {
      ++pos_;
      continue;
    }
    consume_line_end();
    return true;
  }
}

}  // namespace stepwise
