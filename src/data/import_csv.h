// RFC 4180 CSV reader for the importers: quoted fields with commas, doubled quotes and embedded newlines, a UTF-8
// BOM, CRLF or LF line ends. Each record carries the line where it starts; a malformed record is reported with that
// line and reading can go on with the next line. It interprets no field (no type guessing, no trimming).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace stepwise {

struct CsvRecord {
  std::vector<std::string> fields;
  int64_t line = 0;  // 1-based line where the record starts
};

// A malformed record: unterminated quoted field, a quote inside an unquoted field, text after a closing quote.
struct CsvSyntaxError {
  int64_t line;         // where the malformed record starts
  std::string message;  // what is wrong, e.g. "unterminated quoted field"
};

class CsvReader {
 public:
  explicit CsvReader(std::string text);  // the whole file; a leading UTF-8 BOM is dropped

  // Reads the next record into `record`; false at the end of input. Blank lines are skipped. Throws CsvSyntaxError
  // for a malformed record after moving past the physical line where the fault is, so the caller may continue.
  bool next(CsvRecord& record);

 private:
  bool at_line_end() const;
  void consume_line_end();
  void skip_rest_of_line();
  [[noreturn]] void syntax_error(int64_t line, const char* message);
  std::string read_quoted_field(int64_t record_line);
  std::string read_plain_field(int64_t record_line);

  std::string text_;
  size_t pos_ = 0;
  int64_t line_ = 1;
};

}  // namespace stepwise
