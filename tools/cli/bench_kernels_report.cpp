// Printing and JSON output of `stepwise bench kernels`: the per-op table, then the short table of GPU.md targets
// (achieved rate, ceiling, ratio against the target ratio) that closes the output.
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/bench_kernels.h"
#include "core/error.h"

namespace stepwise::cli {

namespace {

std::string format_value(double per_second, bool flops) {
  char text[64];
  if (flops)
    std::snprintf(text, sizeof text, "%.1f TFLOP/s", per_second / 1e12);
  else
    std::snprintf(text, sizeof text, "%.0f GB/s", per_second / 1e9);
  return text;
}

std::string percent(double ratio) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f%%", 100 * ratio);
  return text;
}

// The error text cut to fit one table row.
std::string short_error(const Measurement& m) {
  const std::string e = m.error.empty() ? "no time measured" : m.error;
  return "FAILED: " + (e.size() > 90 ? e.substr(0, 87) + "..." : e);
}

nlohmann::json to_json(const Measurement& m) {
  nlohmann::json j;
  j["name"] = m.name;
  j["shape"] = m.shape;
  j["unit"] = m.flops ? "FLOP/s" : "bytes/s";
  j["ok"] = m.ok();
  if (!m.ok()) j["error"] = m.error;
  j["ms"] = m.ms;
  j["work"] = m.work;
  j["rate"] = m.rate();
  j["ceiling"] = m.ceiling;
  j["ceiling_name"] = m.ceiling_name;
  j["ratio"] = m.ratio();
  if (m.target > 0) {
    j["target_ratio"] = m.target;
    j["met"] = m.met();
  }
  return j;
}

}  // namespace

int KernelReport::failures() const {
  int n = (gemm.ok() ? 0 : 1) + (copy.ok() ? 0 : 1);
  for (const Measurement& m : targets) n += m.ok() ? 0 : 1;
  for (const Measurement& m : ops) n += m.ok() ? 0 : 1;
  return n;
}

std::string format_rate(const Measurement& m) { return format_value(m.rate(), m.flops); }
std::string format_ceiling(const Measurement& m) { return format_value(m.ceiling, m.flops); }

void print_op_table(const KernelReport& report) {
  std::printf("\nPer-op rates (bytes = each input read once, each output written once; ratio vs the copy bandwidth,\n"
              "or vs the bf16 GEMM rate for the FLOP-bound LM head):\n");
  std::printf("%-24s %-34s %9s %14s %14s %8s\n", "op", "shape", "ms", "achieved", "ceiling", "ratio");
  for (const Measurement& m : report.ops) {
    if (!m.ok()) {
      std::printf("%-24s %-34s %s\n", m.name.c_str(), m.shape.c_str(), short_error(m).c_str());
      continue;
    }
    std::printf("%-24s %-34s %9.3f %14s %14s %8s\n", m.name.c_str(), m.shape.c_str(), m.ms, format_rate(m).c_str(),
                format_ceiling(m).c_str(), percent(m.ratio()).c_str());
  }
}

void print_target_table(const KernelReport& report) {
  std::printf("\nGPU.md targets (%s%s; ceilings measured in this run: bf16 GEMM %s, copy %s):\n", report.device.c_str(),
              report.quick ? ", --quick sizes" : "", report.gemm.ok() ? format_rate(report.gemm).c_str() : "FAILED",
              report.copy.ok() ? format_rate(report.copy).c_str() : "FAILED");
  std::printf("%-44s %14s %14s %-24s %8s %8s %4s\n", "target", "achieved", "ceiling", "ceiling is", "ratio", "target",
              "met");
  for (const Measurement& m : report.targets) {
    if (!m.ok()) {
      std::printf("%-44s %s\n", m.name.c_str(), short_error(m).c_str());
      continue;
    }
    std::printf("%-44s %14s %14s %-24s %8s %8s %4s\n", m.name.c_str(), format_rate(m).c_str(),
                format_ceiling(m).c_str(), m.ceiling_name.c_str(), percent(m.ratio()).c_str(),
                (">=" + percent(m.target)).c_str(), m.met() ? "yes" : "no");
  }
  std::fflush(stdout);
}

void write_report_json(const KernelReport& report, const std::string& path) {
  nlohmann::json j;
  j["device"] = report.device;
  j["quick"] = report.quick;
  j["ceilings"] = {{"gemm", to_json(report.gemm)}, {"copy", to_json(report.copy)}};
  j["targets"] = nlohmann::json::array();
  for (const Measurement& m : report.targets) j["targets"].push_back(to_json(m));
  j["ops"] = nlohmann::json::array();
  for (const Measurement& m : report.ops) j["ops"].push_back(to_json(m));
  j["details"] = nlohmann::json::array();
  for (const Measurement& m : report.details) j["details"].push_back(to_json(m));
  j["failures"] = report.failures();
  std::ofstream out(path);
  if (!out) fail("bench kernels: cannot write --json file '", path, "'");
  out << j.dump(2) << "\n";
  if (!out) fail("bench kernels: writing --json file '", path, "' failed");
}

}  // namespace stepwise::cli
