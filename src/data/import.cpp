// The import driver: walks the input (JSON lines, text lines or CSV rows), hands each record to its format's
// converter, turns BadRecord into "FILE:LINE: ..." (fail) or a counted skip, checks ids are unique, and streams the
// results into atomically written outputs. Converters live in import_chat.cpp, import_text.cpp, import_exam.cpp.
#include "data/import.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <functional>
#include <unordered_map>

#include "core/error.h"
#include "data/import_csv.h"
#include "data/import_record.h"

namespace stepwise {

using import_detail::BadRecord;
using import_detail::Converted;
using import_detail::RecordContext;

namespace {

struct FormatInfo {
  ImportFormat format;
  const char* name;
  const char* main_schema;
  bool has_preference;
};

const FormatInfo kFormats[] = {
    {ImportFormat::chimed1, "chimed1", "sft", true},
    {ImportFormat::sharegpt, "sharegpt", "sft", true},
    {ImportFormat::alpaca, "alpaca", "sft", false},
    {ImportFormat::preference_legacy, "preference-legacy", "preference", false},
    {ImportFormat::text, "text", "pretrain", false},
    {ImportFormat::cmb, "cmb", "mcq", false},
    {ImportFormat::cmexam, "cmexam", "mcq", false},
    {ImportFormat::medqa, "medqa", "mcq", false},
};

const FormatInfo& info_of(ImportFormat format) {
  for (const FormatInfo& f : kFormats)
    if (f.format == format) return f;
  SW_CHECK(false);
}

// Receives one good record's output; `line` is where the record starts.
using Emit = std::function<void(Converted&, int64_t line)>;
using Convert = std::function<Converted(const RecordContext&)>;

// Applies the bad-record policy and the id checks around every converter call.
class Driver {
 public:
  Driver(const fs::path& in, const ImportOptions& options, ImportStats& stats, Emit emit)
      : in_(in), options_(options), stats_(stats), emit_(std::move(emit)) {
    stem_ = in.stem().string();
    source_ = options.source.empty() ? stem_ : options.source;
  }

  void record(int64_t line, const Convert& convert) {
    ++stats_.records_in;
    try {
      Converted out = convert(RecordContext{options_, cat(stem_, "-", line), source_});
      check_unique_ids(out.main, main_ids_);
      check_unique_ids(out.preference, preference_ids_);
      remember_ids(out.main, main_ids_, line);
      remember_ids(out.preference, preference_ids_, line);
      if (out.main.empty() && out.preference.empty()) ++stats_.without_output;
      stats_.main_out += static_cast<int64_t>(out.main.size());
      emit_(out, line);
    } catch (const BadRecord& bad) {
      reject(line, bad);
    }
  }

  // A record that could not even be read (invalid JSON or CSV).
  void unreadable(int64_t line, const BadRecord& bad) {
    ++stats_.records_in;
    reject(line, bad);
  }

 private:
  using IdLines = std::unordered_map<std::string, int64_t>;

  void reject(int64_t line, const BadRecord& bad) {
    const std::string message = cat(in_.string(), ":", line, ": ", bad.message());
    if (options_.on_bad_record == BadRecordPolicy::fail) throw Error(message);
    ++stats_.skipped;
    ++stats_.skipped_by_reason[bad.reason];
    if (static_cast<int>(stats_.skip_locations.size()) < options_.max_skip_locations)
      stats_.skip_locations.push_back(message);
  }

  static void check_unique_ids(const std::vector<json>& records, const IdLines& seen) {
    for (const json& r : records) {
      const std::string& id = r["id"].get_ref<const std::string&>();
      if (auto it = seen.find(id); it != seen.end())
        import_detail::bad_record("field 'id' repeats the id of an earlier record",
                                  cat("'", id, "' (first at line ", it->second, ")"));
    }
  }

  static void remember_ids(const std::vector<json>& records, IdLines& seen, int64_t line) {
    for (const json& r : records) seen.emplace(r["id"].get<std::string>(), line);
  }

  const fs::path& in_;
  const ImportOptions& options_;
  ImportStats& stats_;
  Emit emit_;
  std::string stem_, source_;
  IdLines main_ids_, preference_ids_;
};

std::string short_json_error(const json::parse_error& e) {
  std::string what = e.what();
  const size_t bracket = what.find("] ");
  return bracket == std::string::npos ? what : what.substr(bracket + 2);
}

// Calls `fn(line_text, line_number)` for every non-blank line (BOM and trailing CR removed).
void for_each_line(const fs::path& in, const std::function<void(std::string_view, int64_t)>& fn) {
  std::ifstream stream(in, std::ios::binary);
  if (!stream) fail(in.string(), ": cannot open: ", std::strerror(errno));
  std::string line;
  int64_t line_no = 0;
  while (std::getline(stream, line)) {
    ++line_no;
    std::string_view view(line);
    if (line_no == 1 && view.substr(0, 3) == "\xEF\xBB\xBF") view.remove_prefix(3);
    if (!view.empty() && view.back() == '\r') view.remove_suffix(1);
    if (view.find_first_not_of(" \t") == std::string_view::npos) continue;
    fn(view, line_no);
  }
  if (stream.bad()) fail(in.string(), ": read error");
}

using JsonConverter = Converted (*)(const json&, const RecordContext&);

void drive_json_lines(const fs::path& in, Driver& driver, JsonConverter convert) {
  for_each_line(in, [&](std::string_view line, int64_t line_no) {
    json record;
    try {
      record = json::parse(line);
    } catch (const json::parse_error& e) {
      driver.unreadable(line_no, BadRecord{"invalid JSON", short_json_error(e)});
      return;
    }
    driver.record(line_no, [&](const RecordContext& ctx) { return convert(record, ctx); });
  });
}

void drive_text_lines(const fs::path& in, Driver& driver) {
  for_each_line(in, [&](std::string_view line, int64_t line_no) {
    driver.record(line_no, [&](const RecordContext& ctx) { return import_detail::convert_text_line(line, ctx); });
  });
}

void drive_cmexam_csv(const fs::path& in, Driver& driver) {
  CsvReader reader(read_file(in));
  CsvRecord header;
  try {
    if (!reader.next(header)) fail(in.string(), ": empty CSV file (no header row)");
  } catch (const CsvSyntaxError& e) {
    fail(in.string(), ":", e.line, ": invalid CSV header: ", e.message);
  }
  for (std::string& name : header.fields) name = import_detail::trim_text(name);
  import_detail::check_cmexam_header(header.fields, in.string());

  for (;;) {
    CsvRecord row;
    try {
      if (!reader.next(row)) break;
    } catch (const CsvSyntaxError& e) {
      driver.unreadable(e.line, BadRecord{"invalid CSV", e.message});
      continue;
    }
    if (row.fields.size() != header.fields.size()) {
      driver.unreadable(row.line, BadRecord{"invalid CSV: wrong number of fields",
                                            cat(row.fields.size(), " fields, the header has ", header.fields.size())});
      continue;
    }
    driver.record(row.line,
                  [&](const RecordContext& ctx) { return import_detail::convert_cmexam(header.fields, row.fields, ctx); });
  }
}

void drive(ImportFormat format, const fs::path& in, Driver& driver) {
  switch (format) {
    case ImportFormat::chimed1: return drive_json_lines(in, driver, import_detail::convert_chimed1);
    case ImportFormat::sharegpt: return drive_json_lines(in, driver, import_detail::convert_sharegpt);
    case ImportFormat::alpaca: return drive_json_lines(in, driver, import_detail::convert_alpaca);
    case ImportFormat::preference_legacy: return drive_json_lines(in, driver, import_detail::convert_preference_legacy);
    case ImportFormat::text: return drive_text_lines(in, driver);
    case ImportFormat::cmb: return drive_json_lines(in, driver, import_detail::convert_cmb);
    case ImportFormat::cmexam: return drive_cmexam_csv(in, driver);
    case ImportFormat::medqa: return drive_json_lines(in, driver, import_detail::convert_medqa);
  }
  SW_CHECK(false);
}

void write_line(std::FILE* f, const json& record, const fs::path& path) {
  std::string s = record.dump(-1, ' ', false, json::error_handler_t::strict);
  s.push_back('\n');
  if (std::fwrite(s.data(), 1, s.size(), f) != s.size()) fail(path.string(), ": write failed: ", std::strerror(errno));
}

}  // namespace

const std::vector<std::string>& import_format_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const FormatInfo& f : kFormats) v.emplace_back(f.name);
    return v;
  }();
  return names;
}

std::string_view import_format_name(ImportFormat format) { return info_of(format).name; }

ImportFormat import_format_from_name(std::string_view name) {
  std::string valid;
  for (const FormatInfo& f : kFormats) {
    if (name == f.name) return f.format;
    valid += valid.empty() ? f.name : cat(", ", f.name);
  }
  fail("unknown import format '", name, "' (valid: ", valid, ")");
}

std::string_view import_main_schema(ImportFormat format) { return info_of(format).main_schema; }

bool import_has_preference_output(ImportFormat format) { return info_of(format).has_preference; }

ImportResult import_records(ImportFormat format, const fs::path& in, const ImportOptions& options) {
  ImportResult result;
  Driver driver(in, options, result.stats, [&](Converted& out, int64_t) {
    for (json& r : out.main) result.main.push_back(std::move(r));
    for (json& r : out.preference) result.preference.push_back(std::move(r));
    result.stats.preference_out += static_cast<int64_t>(out.preference.size());
  });
  drive(format, in, driver);
  return result;
}

ImportStats import_to_files(ImportFormat format, const fs::path& in, const fs::path& out,
                            const std::optional<fs::path>& preference_out, const ImportOptions& options) {
  if (preference_out && !import_has_preference_output(format))
    fail("format '", import_format_name(format), "' has no preference output; drop --preference-out");
  if (preference_out && fs::absolute(*preference_out).lexically_normal() == fs::absolute(out).lexically_normal())
    fail(out.string(), ": the preference output must be a different file from the main output");

  ImportStats stats;
  auto run = [&](std::FILE* main_file, std::FILE* preference_file) {
    Driver driver(in, options, stats, [&](Converted& converted, int64_t line) {
      for (const json& r : converted.main) write_line(main_file, r, out);
      if (converted.preference.empty()) return;
      if (preference_file) {
        for (const json& r : converted.preference) write_line(preference_file, r, *preference_out);
        stats.preference_out += static_cast<int64_t>(converted.preference.size());
      } else if (format == ImportFormat::chimed1) {
        stats.preference_dropped += static_cast<int64_t>(converted.preference.size());
      } else {
        fail(in.string(), ":", line, ": record is a preference pair (has chosen/rejected) but no preference output ",
             "was given (--preference-out FILE)");
      }
    });
    drive(format, in, driver);
  };
  write_file_atomic_with(out, [&](std::FILE* main_file) {
    if (!preference_out) return run(main_file, nullptr);
    write_file_atomic_with(*preference_out, [&](std::FILE* preference_file) { run(main_file, preference_file); });
  });
  return stats;
}

std::string import_summary_line(ImportFormat format, const fs::path& in, const ImportStats& stats) {
  std::string line = cat(import_format_name(format), " ", in.string(), ": ", stats.records_in, " records in, ",
                         stats.main_out, " ", import_main_schema(format), " out");
  if (import_has_preference_output(format)) line += cat(", ", stats.preference_out, " preference out");
  line += cat(", ", stats.skipped, " skipped");
  if (stats.without_output > 0) line += cat(", ", stats.without_output, " without output (no adopted answer)");
  if (stats.preference_dropped > 0)
    line += cat(", ", stats.preference_dropped, " preference pairs not written (no --preference-out)");
  return line;
}

std::vector<std::string> import_skip_report(const ImportStats& stats) {
  std::vector<std::string> lines;
  for (const auto& [reason, count] : stats.skipped_by_reason) lines.push_back(cat("skipped ", count, ": ", reason));
  for (const std::string& where : stats.skip_locations) lines.push_back(cat("  e.g. ", where));
  return lines;
}

}  // namespace stepwise
