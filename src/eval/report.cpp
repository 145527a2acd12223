// Implementation of eval reports (see report.h): JSON (de)serialisation with validation, Markdown tables, charts.
#include "eval/report.h"

#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>
#include <set>

#include "core/error.h"
#include "eval/report_svg.h"

namespace stepwise::eval {

namespace {

constexpr double kMissing = std::numeric_limits<double>::quiet_NaN();

// ---- JSON out ----

json cell_to_json(const AccuracyCell& c) {
  return {{"total", c.total}, {"correct", c.correct}, {"no_answer", c.no_answer}, {"accuracy", c.accuracy()}};
}

json cells_to_json(const std::map<std::string, AccuracyCell>& cells) {
  json out = json::object();
  for (const auto& [key, cell] : cells) out[key] = cell_to_json(cell);
  return out;
}

json mcq_to_json(const McqSummary& s) {
  return {{"method", mcq_method_name(s.method)},        {"overall", cell_to_json(s.overall)},
          {"single_choice", cell_to_json(s.single_choice)}, {"multi_choice", cell_to_json(s.multi_choice)},
          {"by_subject", cells_to_json(s.by_subject)},      {"by_exam_type", cells_to_json(s.by_exam_type)},
          {"by_source", s.by_source},                       {"not_scored", s.not_scored}};
}

json qa_to_json(const QaSummary& s) {
  return {{"total", s.total},
          {"empty_outputs", s.empty_outputs},
          {"corpus_bleu", s.corpus_bleu},
          {"mean_sentence_bleu", s.mean_sentence_bleu},
          {"mean_rouge_l", s.mean_rouge_l}};
}

json mcq_record_to_json(const McqRecord& r) {
  json j = {{"kind", "mcq"},         {"id", r.id},           {"method", mcq_method_name(r.method)},
            {"exam_subject", r.exam_subject}, {"question_type", question_type_name(r.type)},
            {"answer", r.answer},    {"predicted", r.predicted}, {"correct", r.correct}, {"scored", r.scored}};
  if (r.method == McqMethod::generation) {
    j["source"] = extraction_source_name(r.source);
    j["output"] = r.output;
  } else {
    j["option_scores"] = r.option_scores;
  }
  return j;
}

json qa_record_to_json(const QaRecord& r) {
  return {{"kind", "qa"},     {"id", r.id},           {"bleu", r.bleu}, {"rouge_l", r.rouge_l},
          {"output", r.output}, {"reference", r.reference}};
}

// ---- JSON in: every accessor names the file and the dotted field path ----

class Reader {
 public:
  explicit Reader(std::string where) : where_(std::move(where)) {}

  const json& member(const json& object, const std::string& path, const char* key) const {
    if (!object.is_object()) fail(where_, ": field '", path, "' must be an object");
    auto it = object.find(key);
    if (it == object.end()) fail(where_, ": missing field '", join(path, key), "'");
    return *it;
  }
  int64_t count(const json& object, const std::string& path, const char* key) const {
    const json& v = member(object, path, key);
    if (!v.is_number_integer() || v.get<int64_t>() < 0)
      fail(where_, ": field '", join(path, key), "' must be a non-negative integer");
    return v.get<int64_t>();
  }
  double number(const json& object, const std::string& path, const char* key) const {
    const json& v = member(object, path, key);
    if (!v.is_number()) fail(where_, ": field '", join(path, key), "' must be a number");
    return v.get<double>();
  }
  std::string text(const json& object, const std::string& path, const char* key) const {
    const json& v = member(object, path, key);
    if (!v.is_string()) fail(where_, ": field '", join(path, key), "' must be a string");
    return v.get<std::string>();
  }
  std::array<double, kMaxBleuOrder> four_numbers(const json& object, const std::string& path, const char* key) const {
    const json& v = member(object, path, key);
    if (!v.is_array() || v.size() != kMaxBleuOrder)
      fail(where_, ": field '", join(path, key), "' must be an array of ", kMaxBleuOrder, " numbers");
    std::array<double, kMaxBleuOrder> out{};
    for (int n = 0; n < kMaxBleuOrder; ++n) {
      if (!v[n].is_number()) fail(where_, ": field '", join(path, key), "[", n, "]' must be a number");
      out[n] = v[n].get<double>();
    }
    return out;
  }
  AccuracyCell cell(const json& object, const std::string& path, const char* key) const {
    const json& v = member(object, path, key);
    const std::string p = join(path, key);
    AccuracyCell c{count(v, p, "total"), count(v, p, "correct"), count(v, p, "no_answer")};
    if (c.correct > c.total || c.no_answer > c.total)
      fail(where_, ": field '", p, "' has correct or no_answer greater than total");
    return c;
  }
  std::map<std::string, AccuracyCell> cells(const json& object, const std::string& path, const char* key) const {
    const json& v = member(object, path, key);
    const std::string p = join(path, key);
    if (!v.is_object()) fail(where_, ": field '", p, "' must be an object");
    std::map<std::string, AccuracyCell> out;
    for (const auto& [name, unused] : v.items()) out[name] = cell(v, p, name.c_str());
    return out;
  }
  McqSummary mcq(const json& v, const std::string& path, McqMethod expected) const {
    McqSummary s;
    const std::string method = text(v, path, "method");
    if (method != mcq_method_name(expected))
      fail(where_, ": field '", join(path, "method"), "' is '", method, "'; expected '", mcq_method_name(expected), "'");
    s.method = expected;
    s.overall = cell(v, path, "overall");
    s.single_choice = cell(v, path, "single_choice");
    s.multi_choice = cell(v, path, "multi_choice");
    s.by_subject = cells(v, path, "by_subject");
    s.by_exam_type = cells(v, path, "by_exam_type");
    const json& sources = member(v, path, "by_source");
    if (!sources.is_object()) fail(where_, ": field '", join(path, "by_source"), "' must be an object");
    for (const auto& [name, unused] : sources.items())
      s.by_source[name] = count(sources, join(path, "by_source"), name.c_str());
    s.not_scored = count(v, path, "not_scored");
    return s;
  }
  QaSummary qa(const json& v, const std::string& path) const {
    QaSummary s;
    s.total = count(v, path, "total");
    s.empty_outputs = count(v, path, "empty_outputs");
    s.corpus_bleu = four_numbers(v, path, "corpus_bleu");
    s.mean_sentence_bleu = four_numbers(v, path, "mean_sentence_bleu");
    s.mean_rouge_l = number(v, path, "mean_rouge_l");
    return s;
  }

 private:
  static std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
  }
  std::string where_;
};

// ---- Markdown ----

std::string percent(double fraction) {
  if (std::isnan(fraction)) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", 100.0 * fraction);
  return buf;
}

std::string md_cell(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += "\\|";
    else if (c == '\n') out += ' ';
    else out.push_back(c);
  }
  return out;
}

std::string accuracy_table(const std::string& first_column, const std::map<std::string, AccuracyCell>& rows,
                           bool with_no_answer) {
  std::string md = cat("| ", first_column, " | items | correct | accuracy % |", with_no_answer ? " no letter |" : "",
                       "\n|---|---:|---:|---:|", with_no_answer ? "---:|" : "", "\n");
  for (const auto& [name, c] : rows) {
    md += cat("| ", md_cell(name), " | ", c.total, " | ", c.correct, " | ", percent(c.accuracy()), " |");
    if (with_no_answer) md += cat(" ", c.no_answer, " |");
    md += "\n";
  }
  return md;
}

std::string mcq_markdown(const McqSummary& s) {
  const bool generation = s.method == McqMethod::generation;
  std::string md = cat("## Multiple choice by ", mcq_method_name(s.method), "\n\n");
  std::map<std::string, AccuracyCell> headline = {{"all", s.overall}};
  if (s.single_choice.total) headline["单项选择题"] = s.single_choice;
  if (s.multi_choice.total) headline["多项选择题"] = s.multi_choice;
  md += accuracy_table("questions", headline, generation);
  if (generation) {
    md += cat("\nAnswers with no extractable letter: ", s.overall.no_answer, " of ", s.overall.total, ".");
    md += " Letters found by the answer pattern / by the whole-text fallback: ";
    md += cat(s.by_source.count("pattern") ? s.by_source.at("pattern") : 0, " / ",
              s.by_source.count("fallback") ? s.by_source.at("fallback") : 0, ".\n");
  }
  if (s.not_scored)
    md += cat("\n", s.not_scored, " multi-choice items are not scored by likelihood (one option cannot be a set).\n");
  md += "\n### By exam subject\n\n" + accuracy_table("exam_subject", s.by_subject, generation);
  if (s.by_exam_type.size() > 1) md += "\n### By exam type\n\n" + accuracy_table("exam_type", s.by_exam_type, generation);
  return md + "\n";
}

std::string qa_markdown(const QaSummary& s) {
  std::string md = "## Open QA (characters as tokens)\n\n| metric | value (×100) |\n|---|---:|\n";
  for (int n = 0; n < kMaxBleuOrder; ++n) md += cat("| corpus BLEU-", n + 1, " | ", percent(s.corpus_bleu[n]), " |\n");
  for (int n = 0; n < kMaxBleuOrder; ++n)
    md += cat("| mean sentence BLEU-", n + 1, " | ", percent(s.mean_sentence_bleu[n]), " |\n");
  md += cat("| mean ROUGE-L F1 | ", percent(s.mean_rouge_l), " |\n");
  md += cat("\nItems: ", s.total, "; empty replies: ", s.empty_outputs, ".\n\n");
  return md;
}

// ---- headline metrics shared by the single and the comparison views ----

struct Metric {
  std::string name;
  std::function<double(const EvalReport&)> value;  // a fraction in [0, 1]; NaN when the report lacks it
};

std::vector<Metric> headline_metrics() {
  std::vector<Metric> metrics = {
      {"MCQ accuracy (generation)",
       [](const EvalReport& r) { return r.mcq_generation ? r.mcq_generation->overall.accuracy() : kMissing; }},
      {"MCQ accuracy (likelihood)",
       [](const EvalReport& r) { return r.mcq_likelihood ? r.mcq_likelihood->overall.accuracy() : kMissing; }}};
  for (int n = 0; n < kMaxBleuOrder; ++n)
    metrics.push_back({cat("QA BLEU-", n + 1), [n](const EvalReport& r) { return r.qa ? r.qa->corpus_bleu[n] : kMissing; }});
  metrics.push_back({"QA ROUGE-L", [](const EvalReport& r) { return r.qa ? r.qa->mean_rouge_l : kMissing; }});
  return metrics;
}

// Metrics at least one report has, so that a chart has no all-empty group.
std::vector<Metric> present_metrics(const std::vector<EvalReport>& reports) {
  std::vector<Metric> out;
  for (Metric& m : headline_metrics())
    for (const EvalReport& r : reports)
      if (!std::isnan(m.value(r))) {
        out.push_back(std::move(m));
        break;
      }
  return out;
}

void check_reports(const std::vector<EvalReport>& reports) {
  if (reports.empty()) fail("comparison needs at least one report");
  std::set<std::string> names;
  for (const EvalReport& r : reports)
    if (!names.insert(r.model).second) fail("comparison: two reports are labelled '", r.model, "'; labels must differ");
}

void write_items(const fs::path& path, const EvalReport& report) {
  std::vector<json> lines;
  for (const McqRecord& r : report.mcq_records) lines.push_back(mcq_record_to_json(r));
  for (const QaRecord& r : report.qa_records) lines.push_back(qa_record_to_json(r));
  jsonl_write(path, lines);
}

}  // namespace

json report_to_json(const EvalReport& report) {
  json j = {{"format", kReportFormat}, {"version", kReportVersion}, {"model", report.model},
            {"benchmark", report.benchmark}, {"meta", report.meta}};
  json mcq = json::object();
  if (report.mcq_generation) mcq["generation"] = mcq_to_json(*report.mcq_generation);
  if (report.mcq_likelihood) mcq["likelihood"] = mcq_to_json(*report.mcq_likelihood);
  if (!mcq.empty()) j["mcq"] = mcq;
  if (report.qa) j["qa"] = qa_to_json(*report.qa);
  return j;
}

EvalReport report_from_json(const json& document, const std::string& where) {
  const Reader in(where);
  if (!document.is_object()) fail(where, ": a report must be a JSON object");
  const std::string format = in.text(document, "", "format");
  if (format != kReportFormat) fail(where, ": field 'format' is '", format, "'; expected '", kReportFormat, "'");
  const int64_t version = in.count(document, "", "version");
  if (version != kReportVersion)
    fail(where, ": report version ", version, " is not supported (this build reads version ", kReportVersion, ")");
  EvalReport report;
  report.model = in.text(document, "", "model");
  report.benchmark = in.text(document, "", "benchmark");
  report.meta = in.member(document, "", "meta");
  if (auto it = document.find("mcq"); it != document.end()) {
    if (!it->is_object()) fail(where, ": field 'mcq' must be an object");
    if (it->contains("generation"))
      report.mcq_generation = in.mcq(it->at("generation"), "mcq.generation", McqMethod::generation);
    if (it->contains("likelihood"))
      report.mcq_likelihood = in.mcq(it->at("likelihood"), "mcq.likelihood", McqMethod::likelihood);
  }
  if (auto it = document.find("qa"); it != document.end()) report.qa = in.qa(*it, "qa");
  return report;
}

EvalReport read_report(const fs::path& path) {
  const fs::path file = fs::is_directory(path) ? path / "report.json" : path;
  json document;
  try {
    document = json::parse(read_file(file));
  } catch (const json::parse_error& e) {
    fail(file.string(), ": invalid JSON: ", e.what());
  }
  return report_from_json(document, file.string());
}

std::string report_markdown(const EvalReport& report) {
  std::string md = cat("# Eval report: ", md_cell(report.model), "\n\nBenchmark: `", report.benchmark, "`\n\n");
  if (!report.meta.empty()) md += cat("Settings: `", report.meta.dump(), "`\n\n");
  if (report.mcq_generation) md += mcq_markdown(*report.mcq_generation);
  if (report.mcq_likelihood) md += mcq_markdown(*report.mcq_likelihood);
  if (report.qa) md += qa_markdown(*report.qa);
  if (!report.mcq_generation && !report.mcq_likelihood && !report.qa) md += "No results.\n";
  return md;
}

std::string report_svg(const EvalReport& report) {
  BarChart chart;
  chart.title = cat("stepwise eval: ", report.model);
  chart.y_label = "accuracy / score (%)";
  BarSeries series{report.model, {}};
  for (const Metric& m : present_metrics({report})) {
    chart.categories.push_back(m.name);
    series.values.push_back(100.0 * m.value(report));
  }
  if (report.mcq_generation)
    for (const auto& [subject, cell] : report.mcq_generation->by_subject) {
      chart.categories.push_back(cat("MCQ ", subject));
      series.values.push_back(100.0 * cell.accuracy());
    }
  chart.series.push_back(std::move(series));
  return render_bar_chart(chart);
}

void write_report(const fs::path& out_dir, const EvalReport& report) {
  fs::create_directories(out_dir);
  write_file_atomic(out_dir / "report.json", report_to_json(report).dump(2) + "\n");
  write_file_atomic(out_dir / "report.md", report_markdown(report));
  write_file_atomic(out_dir / "report.svg", report_svg(report));
  if (!report.mcq_records.empty() || !report.qa_records.empty()) write_items(out_dir / "items.jsonl", report);
}

std::string comparison_markdown(const std::vector<EvalReport>& reports) {
  check_reports(reports);
  const auto header = [&](const std::string& first_column) {
    std::string h = cat("| ", first_column, " |"), rule = "|---|";
    for (const EvalReport& r : reports) {
      h += cat(" ", md_cell(r.model), " |");
      rule += "---:|";
    }
    return h + "\n" + rule + "\n";
  };
  std::string md = "# Eval comparison\n\n";
  for (const EvalReport& r : reports) md += cat("- ", md_cell(r.model), ": `", r.benchmark, "`\n");
  md += cat("\n## Headline metrics (×100)\n\n", header("metric"));
  for (const Metric& m : present_metrics(reports)) {
    md += cat("| ", m.name, " |");
    for (const EvalReport& r : reports) md += cat(" ", percent(m.value(r)), " |");
    md += "\n";
  }
  md += "| MCQ no-letter answers (generation) |";
  for (const EvalReport& r : reports)
    md += r.mcq_generation ? cat(" ", r.mcq_generation->overall.no_answer, " |") : std::string(" n/a |");
  md += "\n";
  std::set<std::string> subjects;
  for (const EvalReport& r : reports)
    if (r.mcq_generation)
      for (const auto& [subject, unused] : r.mcq_generation->by_subject) subjects.insert(subject);
  if (!subjects.empty()) {
    md += cat("\n## MCQ accuracy by exam subject (generation, %)\n\n", header("exam_subject"));
    for (const std::string& subject : subjects) {
      md += cat("| ", md_cell(subject), " |");
      for (const EvalReport& r : reports) {
        const bool has = r.mcq_generation && r.mcq_generation->by_subject.count(subject);
        md += cat(" ", has ? percent(r.mcq_generation->by_subject.at(subject).accuracy()) : "n/a", " |");
      }
      md += "\n";
    }
  }
  return md;
}

std::string comparison_svg(const std::vector<EvalReport>& reports) {
  check_reports(reports);
  BarChart chart;
  chart.title = "stepwise eval: comparison";
  chart.y_label = "accuracy / score (%)";
  const std::vector<Metric> metrics = present_metrics(reports);
  for (const Metric& m : metrics) chart.categories.push_back(m.name);
  for (const EvalReport& r : reports) {
    BarSeries series{r.model, {}};
    for (const Metric& m : metrics) series.values.push_back(100.0 * m.value(r));
    chart.series.push_back(std::move(series));
  }
  return render_bar_chart(chart);
}

void write_comparison(const fs::path& out_dir, const std::vector<EvalReport>& reports) {
  const std::string md = comparison_markdown(reports);
  const std::string svg = comparison_svg(reports);
  fs::create_directories(out_dir);
  write_file_atomic(out_dir / "report.md", md);
  write_file_atomic(out_dir / "report.svg", svg);
}

}  // namespace stepwise::eval
