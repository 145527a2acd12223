// Implementation of the metrics log and its plot (see metrics.h).
#include "train/metrics.h"

#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "core/svg_chart.h"
#include "data/jsonl.h"

namespace stepwise {

MetricsLog::MetricsLog(const fs::path& path, int64_t resume_step) : path_(path) {
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  if (resume_step >= 0 && fs::exists(path)) {
    std::vector<json> keep;
    for (json& r : read_metrics(path))
      if (r.value("step", int64_t(0)) <= resume_step) keep.push_back(std::move(r));
    jsonl_write(path, keep);
  } else {
    write_file_atomic(path, "");
  }
  file_ = std::fopen(path.c_str(), "ab");
  if (!file_) fail(path.string(), ": cannot open for appending: ", std::strerror(errno));
}

MetricsLog::~MetricsLog() {
  if (file_) std::fclose(file_);
}

void MetricsLog::write(const nlohmann::json& record) {
  std::string line = record.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() || std::fflush(file_) != 0)
    fail(path_.string(), ": write failed: ", std::strerror(errno));
}

std::vector<nlohmann::json> read_metrics(const fs::path& path) { return jsonl_read(path); }

std::string plot_metrics_svg(const std::vector<nlohmann::json>& records, const std::string& title) {
  LineSeries loss{"train loss", {}}, eval{"eval loss", {}}, lr{"lr", {}};
  for (const auto& r : records) {
    if (!r.contains("step")) continue;
    const double step = r["step"].get<double>();
    if (r.contains("loss") && r["loss"].is_number()) loss.points.emplace_back(step, r["loss"].get<double>());
    if (r.contains("eval_loss") && r["eval_loss"].is_number()) eval.points.emplace_back(step, r["eval_loss"].get<double>());
    if (r.contains("lr") && r["lr"].is_number()) lr.points.emplace_back(step, r["lr"].get<double>());
  }
  LinePanel losses{title + ": loss", "step", "loss (nats/token)", {loss}, false};
  if (!eval.points.empty()) losses.series.push_back(eval);
  LinePanel rates{"learning rate", "step", "lr", {lr}, false};
  return svg_line_chart({losses, rates});
}

}  // namespace stepwise
