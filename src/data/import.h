// Importers: convert real-world medical dataset formats (ChiMed/39ask, ShareGPT, Alpaca, legacy preference pairs,
// plain text, CMB-Exam, CMExam CSV, MedQA) into the canonical JSONL schemas (pretrain, sft, preference, mcq).
// Bad records stop the import with "FILE:LINE: <field and what is wrong>" unless the skip policy is chosen.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/fs.h"
#include "data/jsonl.h"

namespace stepwise {

enum class ImportFormat { chimed1, sharegpt, alpaca, preference_legacy, text, cmb, cmexam, medqa };

// Names as the CLI spells them: "chimed1", "sharegpt", "alpaca", "preference-legacy", "text", "cmb", "cmexam", "medqa".
const std::vector<std::string>& import_format_names();
std::string_view import_format_name(ImportFormat format);
// Throws Error naming the valid formats when `name` is not one of them.
ImportFormat import_format_from_name(std::string_view name);

// Schema of the main output: "sft" | "preference" | "pretrain" | "mcq".
std::string_view import_main_schema(ImportFormat format);
// True for formats that can also yield preference pairs besides the main output (chimed1, sharegpt).
bool import_has_preference_output(ImportFormat format);

enum class BadRecordPolicy { fail, skip };
enum class DepartmentLevel { full, top };  // "内科>消化内科" kept whole, or only "内科"

struct ImportOptions {
  BadRecordPolicy on_bad_record = BadRecordPolicy::fail;
  DepartmentLevel department_level = DepartmentLevel::full;
  std::string source;              // text: "source" of records lacking one; empty = the input file's stem
  int max_skip_locations = 5;      // how many "FILE:LINE: message" examples of skipped records to keep
};

struct ImportStats {
  int64_t records_in = 0;          // non-blank input lines (JSONL, text) or CSV rows after the header
  int64_t main_out = 0;            // records of the main schema produced
  int64_t preference_out = 0;      // preference pairs produced (chimed1, sharegpt)
  int64_t preference_dropped = 0;  // chimed1 pairs not written because no preference output was given
  int64_t without_output = 0;      // good records that yield nothing (chimed1 question with no adopted answer)
  int64_t skipped = 0;             // bad records skipped under BadRecordPolicy::skip
  std::map<std::string, int64_t> skipped_by_reason;  // "field 'answer' is missing" -> count
  std::vector<std::string> skip_locations;           // first few "FILE:LINE: message"
};

struct ImportResult {
  std::vector<json> main;        // records of import_main_schema(format)
  std::vector<json> preference;  // preference pairs (chimed1, sharegpt with chosen/rejected)
  ImportStats stats;
};

// Reads and converts the whole file in memory.
ImportResult import_records(ImportFormat format, const fs::path& in, const ImportOptions& options);

// Streams the conversion into `out` (and `preference_out`, when given) through temporary files that are renamed
// into place only when the whole input converted; on any error no output file is touched. A sharegpt preference
// record with no `preference_out` is an error; chimed1 pairs without one are counted in preference_dropped.
ImportStats import_to_files(ImportFormat format, const fs::path& in, const fs::path& out,
                            const std::optional<fs::path>& preference_out, const ImportOptions& options);

// One line: "<format> FILE: N records in, M <schema> out, P preference out, S skipped".
std::string import_summary_line(ImportFormat format, const fs::path& in, const ImportStats& stats);
// Lines describing skipped records: counts per reason, then the first locations. Empty when nothing was skipped.
std::vector<std::string> import_skip_report(const ImportStats& stats);

}  // namespace stepwise
