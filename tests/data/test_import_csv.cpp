// Tests of the RFC 4180 CSV reader: quoted commas, doubled quotes, embedded newlines (and the start line of such
// records), BOM, CRLF, empty fields, blank lines, and recovery after malformed records; plus UTF-8 and trim helpers.
#include <gtest/gtest.h>

#include "data/import_csv.h"
#include "data/import_record.h"

using namespace stepwise;

namespace {

std::vector<CsvRecord> read_all(const std::string& text) {
  CsvReader reader(text);
  std::vector<CsvRecord> out;
  CsvRecord r;
  while (reader.next(r)) out.push_back(r);
  return out;
}

using Fields = std::vector<std::string>;

TEST(Csv, QuotedCommasDoubledQuotesAndEmbeddedNewlines) {
  const auto rows = read_all("a,b,c\n\"x, y\",\"他说\"\"你好\"\"\",\"第一行\n第二行\"\nlast,,\n");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].fields, (Fields{"a", "b", "c"}));
  EXPECT_EQ(rows[1].fields, (Fields{"x, y", "他说\"你好\"", "第一行\n第二行"}));
  EXPECT_EQ(rows[2].fields, (Fields{"last", "", ""}));
  EXPECT_EQ(rows[0].line, 1);
  EXPECT_EQ(rows[1].line, 2);
  EXPECT_EQ(rows[2].line, 4);  // record 2 spans lines 2-3
}

TEST(Csv, BomCrlfAndNoFinalNewline) {
  const auto rows = read_all("\xEF\xBB\xBFQuestion,Answer\r\n\"多行\r\n问题\",A\r\n题二,B");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].fields, (Fields{"Question", "Answer"}));  // BOM dropped
  EXPECT_EQ(rows[1].fields, (Fields{"多行\r\n问题", "A"}));     // quoted content kept verbatim
  EXPECT_EQ(rows[2].fields, (Fields{"题二", "B"}));
  EXPECT_EQ(rows[2].line, 4);
}

TEST(Csv, BlankLinesAreSkippedButCounted) {
  const auto rows = read_all("a\n\n\r\nb\n");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].fields, (Fields{"b"}));
  EXPECT_EQ(rows[1].line, 4);
}

TEST(Csv, EmptyQuotedFieldAndTrailingComma) {
  const auto rows = read_all("\"\",x,\n");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].fields, (Fields{"", "x", ""}));
}

// Reads everything, collecting syntax errors instead of stopping.
struct ReadOutcome {
  std::vector<CsvRecord> records;
  std::vector<CsvSyntaxError> errors;
};

ReadOutcome read_with_errors(const std::string& text) {
  CsvReader reader(text);
  ReadOutcome out;
  for (;;) {
    CsvRecord r;
    try {
      if (!reader.next(r)) break;
      out.records.push_back(r);
    } catch (const CsvSyntaxError& e) {
      out.errors.push_back(e);
    }
  }
  return out;
}

TEST(Csv, MalformedRecordsReportTheirStartLineAndReadingGoesOn) {
  const auto out = read_with_errors("ok,1\nbad\"quote,2\n\"closed\"junk,3\nfine,4\n\"never closed,5\nmore\n");
  ASSERT_EQ(out.records.size(), 2u);
  EXPECT_EQ(out.records[0].fields, (Fields{"ok", "1"}));
  EXPECT_EQ(out.records[1].fields, (Fields{"fine", "4"}));
  EXPECT_EQ(out.records[1].line, 4);
  ASSERT_EQ(out.errors.size(), 3u);
  EXPECT_EQ(out.errors[0].line, 2);
  EXPECT_EQ(out.errors[0].message, "quote inside an unquoted field");
  EXPECT_EQ(out.errors[1].line, 3);
  EXPECT_EQ(out.errors[1].message, "text after a closing quote");
  EXPECT_EQ(out.errors[2].line, 5);
  EXPECT_EQ(out.errors[2].message, "unterminated quoted field");
}

TEST(Csv, EmptyInputHasNoRecords) {
  EXPECT_TRUE(read_all("").empty());
  EXPECT_TRUE(read_all("\xEF\xBB\xBF").empty());
  EXPECT_TRUE(read_all("\r\n\n").empty());
}

}  // namespace

// The text helpers the CSV and text importers rely on.

namespace {

using stepwise::import_detail::is_valid_utf8;
using stepwise::import_detail::trim_text;

TEST(ImportText, Utf8Validation) {
  EXPECT_TRUE(is_valid_utf8("abc 高血压 \xF0\x9F\x98\x80"));  // ASCII, CJK, a 4-byte emoji
  EXPECT_FALSE(is_valid_utf8("\xFF"));
  EXPECT_FALSE(is_valid_utf8("\xE9\xAB"));          // truncated 3-byte sequence
  EXPECT_FALSE(is_valid_utf8("\xC0\xAF"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));      // UTF-16 surrogate
  EXPECT_FALSE(is_valid_utf8("\xF4\x90\x80\x80"));  // beyond U+10FFFF
}

TEST(ImportText, TrimRemovesAsciiAndIdeographicSpaces) {
  EXPECT_EQ(trim_text("\xE3\x80\x80 \t胃痛\xC2\xA0\r\n"), "胃痛");
  EXPECT_EQ(trim_text("  "), "");
  EXPECT_EQ(trim_text("内 科"), "内 科");
}

}  // namespace
