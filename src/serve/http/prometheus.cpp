// Prometheus text format: histogram accumulation and the writer (see prometheus.h). Label values and HELP text are
// escaped as the format requires (backslash, double quote, newline).
#include "serve/http/prometheus.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "core/error.h"

namespace stepwise::http {

Histogram::Histogram(std::vector<double> upper_bounds)
    : upper_bounds_(std::move(upper_bounds)), bucket_counts_(upper_bounds_.size(), 0) {
  for (size_t i = 0; i < upper_bounds_.size(); ++i) {
    if (!std::isfinite(upper_bounds_[i]) || (i > 0 && upper_bounds_[i] <= upper_bounds_[i - 1]))
      throw std::invalid_argument(cat("histogram bucket bounds must be finite and strictly increasing (bound ", i, ")"));
  }
}

void Histogram::observe(double value) {
  std::lock_guard lock(mutex_);
  for (size_t i = 0; i < upper_bounds_.size(); ++i) {
    if (value <= upper_bounds_[i]) {
      ++bucket_counts_[i];
      break;
    }
  }
  ++count_;
  sum_ += value;
}

Histogram::Snapshot Histogram::snapshot() const {
  std::lock_guard lock(mutex_);
  Snapshot snapshot{upper_bounds_, std::vector<uint64_t>(upper_bounds_.size()), count_, sum_};
  uint64_t running = 0;
  for (size_t i = 0; i < bucket_counts_.size(); ++i) snapshot.cumulative_counts[i] = running += bucket_counts_[i];
  return snapshot;
}

std::string prometheus_number(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buffer[64];
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    std::snprintf(buffer, sizeof buffer, "%.0f", value);
  } else {
    for (int precision = 15; precision <= 17; ++precision) {  // the shortest text that reads back exactly
      std::snprintf(buffer, sizeof buffer, "%.*g", precision, value);
      if (std::strtod(buffer, nullptr) == value) break;
    }
  }
  return buffer;
}

namespace {

std::string escape(const std::string& text, bool quotes) {
  std::string out;
  for (const char c : text) {
    if (c == '\\') out += "\\\\";
    else if (c == '\n') out += "\\n";
    else if (c == '"' && quotes) out += "\\\"";
    else out += c;
  }
  return out;
}

}  // namespace

void PrometheusWriter::family(const std::string& name, const std::string& help, const std::string& type) {
  text_ += "# HELP " + name + " " + escape(help, false) + "\n";
  text_ += "# TYPE " + name + " " + type + "\n";
}

void PrometheusWriter::sample(const std::string& name, double value, const Labels& labels) {
  text_ += name;
  if (!labels.empty()) {
    text_ += '{';
    for (size_t i = 0; i < labels.size(); ++i) {
      if (i) text_ += ',';
      text_ += labels[i].first + "=\"" + escape(labels[i].second, true) + "\"";
    }
    text_ += '}';
  }
  text_ += ' ' + prometheus_number(value) + '\n';
}

void PrometheusWriter::histogram(const std::string& name, const std::string& help, const Histogram::Snapshot& snapshot) {
  family(name, help, "histogram");
  for (size_t i = 0; i < snapshot.upper_bounds.size(); ++i)
    sample(name + "_bucket", double(snapshot.cumulative_counts[i]), {{"le", prometheus_number(snapshot.upper_bounds[i])}});
  sample(name + "_bucket", double(snapshot.count), {{"le", "+Inf"}});
  sample(name + "_sum", snapshot.sum);
  sample(name + "_count", double(snapshot.count));
}

void PrometheusWriter::gauge(const std::string& name, const std::string& help, double value) {
  family(name, help, "gauge");
  sample(name, value);
}

void PrometheusWriter::counter(const std::string& name, const std::string& help, double value) {
  family(name, help, "counter");
  sample(name, value);
}

}  // namespace stepwise::http
