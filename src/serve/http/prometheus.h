// Prometheus text exposition format (version 0.0.4): a thread-safe cumulative histogram and a writer for metric
// families (HELP/TYPE lines, labelled samples, histogram buckets). Knows nothing about what is measured.
#pragma once
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace stepwise::http {

class Histogram {
 public:
  // Upper bounds of the finite buckets, strictly increasing; a +Inf bucket is implied.
  explicit Histogram(std::vector<double> upper_bounds);

  void observe(double value);

  struct Snapshot {
    std::vector<double> upper_bounds;
    std::vector<uint64_t> cumulative_counts;  // per finite bucket: observations <= bound
    uint64_t count = 0;                       // all observations (the +Inf bucket)
    double sum = 0;
  };
  Snapshot snapshot() const;

 private:
  std::vector<double> upper_bounds_;
  mutable std::mutex mutex_;
  std::vector<uint64_t> bucket_counts_;  // per finite bucket, not cumulative
  uint64_t count_ = 0;
  double sum_ = 0;
};

using Labels = std::vector<std::pair<std::string, std::string>>;

// Numbers as Prometheus writes them: integers without exponent, "+Inf", "-Inf", "NaN".
std::string prometheus_number(double value);

class PrometheusWriter {
 public:
  // type: "counter" | "gauge" | "histogram". Counters' names end in "_total" by convention (not enforced).
  void family(const std::string& name, const std::string& help, const std::string& type);
  void sample(const std::string& name, double value, const Labels& labels = {});
  // One whole family: HELP, TYPE, then name_bucket{le=...}, name_sum, name_count.
  void histogram(const std::string& name, const std::string& help, const Histogram::Snapshot& snapshot);
  void gauge(const std::string& name, const std::string& help, double value);
  void counter(const std::string& name, const std::string& help, double value);

  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

}  // namespace stepwise::http
