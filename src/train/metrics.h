// metrics.jsonl of a run: one JSON object per logged step (step, loss, lr, grad_norm, tokens_per_s, aux_loss,
// expert_load, eval_loss, ...). Appends with a flush per record; on resume, records after the resumed step are dropped
// so the file reads as one uninterrupted run.
#pragma once
#include <nlohmann/json.hpp>

#include <cstdio>

#include "core/fs.h"

namespace stepwise {

class MetricsLog {
 public:
  // Opens `path` for appending. When resume_step >= 0, first rewrites the file keeping only records with
  // step <= resume_step (atomically); when resume_step < 0 the file is started afresh.
  MetricsLog(const fs::path& path, int64_t resume_step);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  void write(const nlohmann::json& record);

 private:
  fs::path path_;
  std::FILE* file_ = nullptr;
};

// Reads every record of a metrics.jsonl (errors name file and line).
std::vector<nlohmann::json> read_metrics(const fs::path& path);

// Draws loss (train and eval) and learning-rate curves of a metrics.jsonl as an SVG document.
std::string plot_metrics_svg(const std::vector<nlohmann::json>& records, const std::string& title);

}  // namespace stepwise
