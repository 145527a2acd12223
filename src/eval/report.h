// Eval reports: one model's summaries written as report.json (versioned, read back by read_report), report.md
// (tables) and report.svg (bar chart), plus per-item results in items.jsonl; and a side-by-side comparison of
// several models' reports (base vs SFT vs DPO) as one report.md + report.svg. Every file is written atomically.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "core/fs.h"
#include "data/jsonl.h"
#include "eval/scoring.h"

namespace stepwise::eval {

constexpr const char* kReportFormat = "stepwise-eval-report";
constexpr int kReportVersion = 1;

struct EvalReport {
  std::string model;                  // label shown in tables and legends: "base", "sft", a checkpoint path
  std::string benchmark;              // the benchmark file(s) evaluated
  json meta = json::object();         // runner settings (server URL, sampling, prompt style), passed through
  std::optional<McqSummary> mcq_generation;
  std::optional<McqSummary> mcq_likelihood;
  std::optional<QaSummary> qa;
  // Per-item results: written to items.jsonl by write_report when present; not part of report.json.
  std::vector<McqRecord> mcq_records;
  std::vector<QaRecord> qa_records;
};

json report_to_json(const EvalReport& report);                               // summaries only
EvalReport report_from_json(const json& document, const std::string& where);  // validates format, version, fields
EvalReport read_report(const fs::path& path);                                 // report.json, or a directory holding it

std::string report_markdown(const EvalReport& report);
std::string report_svg(const EvalReport& report);

// Writes report.json, report.md, report.svg (and items.jsonl when the report holds records) into `out_dir`,
// creating it; each file appears complete or not at all.
void write_report(const fs::path& out_dir, const EvalReport& report);

// Several models side by side: headline metrics and per-subject accuracy, one column / bar per model.
std::string comparison_markdown(const std::vector<EvalReport>& reports);
std::string comparison_svg(const std::vector<EvalReport>& reports);
void write_comparison(const fs::path& out_dir, const std::vector<EvalReport>& reports);  // report.md + report.svg

}  // namespace stepwise::eval
