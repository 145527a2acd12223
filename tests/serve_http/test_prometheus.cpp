// Tests of the Prometheus text format (histograms, number formatting, escaping) and of the /metrics page rendered
// from engine metrics.
#include <gtest/gtest.h>

#include <cmath>
#include <thread>

#include "serve/http/prometheus.h"
#include "serve/http/serving_metrics.h"

namespace stepwise::http {
namespace {

bool contains(const std::string& text, const std::string& line) { return text.find(line) != std::string::npos; }

TEST(Prometheus, HistogramIsCumulative) {
  Histogram histogram({0.1, 1, 10});
  for (const double v : {0.05, 0.1, 0.5, 2.0, 50.0}) histogram.observe(v);
  const Histogram::Snapshot s = histogram.snapshot();
  EXPECT_EQ(s.cumulative_counts, (std::vector<uint64_t>{2, 3, 4}));  // 0.1 falls in le="0.1"
  EXPECT_EQ(s.count, 5u);
  EXPECT_DOUBLE_EQ(s.sum, 52.65);
}

TEST(Prometheus, HistogramRejectsBadBounds) {
  EXPECT_THROW(Histogram({1, 1}), std::invalid_argument);
  EXPECT_THROW(Histogram({2, 1}), std::invalid_argument);
  EXPECT_THROW(Histogram({1, INFINITY}), std::invalid_argument);
}

TEST(Prometheus, HistogramIsThreadSafe) {
  Histogram histogram({1});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) histogram.observe(0.5);
    });
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(histogram.snapshot().count, 40000u);
  EXPECT_EQ(histogram.snapshot().cumulative_counts[0], 40000u);
}

TEST(Prometheus, Numbers) {
  EXPECT_EQ(prometheus_number(3), "3");
  EXPECT_EQ(prometheus_number(-7), "-7");
  EXPECT_EQ(prometheus_number(0.005), "0.005");
  EXPECT_EQ(prometheus_number(0.1), "0.1");
  EXPECT_EQ(prometheus_number(2.5), "2.5");
  EXPECT_EQ(prometheus_number(1e20), "1e+20");
  EXPECT_EQ(prometheus_number(INFINITY), "+Inf");
  EXPECT_EQ(prometheus_number(-INFINITY), "-Inf");
  EXPECT_EQ(prometheus_number(NAN), "NaN");
  EXPECT_EQ(std::stod(prometheus_number(1.0 / 3.0)), 1.0 / 3.0);
}

TEST(Prometheus, WriterFormat) {
  PrometheusWriter out;
  out.counter("x_total", "Things.\nMore", 4);
  out.family("y", "Labelled.", "gauge");
  out.sample("y", 1.5, {{"layer", "0"}, {"name", "a\"b\\c"}});
  Histogram histogram({0.5, 1});
  histogram.observe(0.7);
  out.histogram("lat_seconds", "Latency.", histogram.snapshot());
  EXPECT_EQ(out.text(),
            "# HELP x_total Things.\\nMore\n"
            "# TYPE x_total counter\n"
            "x_total 4\n"
            "# HELP y Labelled.\n"
            "# TYPE y gauge\n"
            "y{layer=\"0\",name=\"a\\\"b\\\\c\"} 1.5\n"
            "# HELP lat_seconds Latency.\n"
            "# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{le=\"0.5\"} 0\n"
            "lat_seconds_bucket{le=\"1\"} 1\n"
            "lat_seconds_bucket{le=\"+Inf\"} 1\n"
            "lat_seconds_sum 0.7\n"
            "lat_seconds_count 1\n");
}

TEST(ServingMetrics, RendersEngineAndLatencyMetrics) {
  ServingMetrics metrics;
  metrics.observe_time_to_first_token(0.03);
  metrics.observe_inter_token_latency(0.002);
  metrics.observe_inter_token_latency(0.004);
  metrics.observe_request_latency(0.2);
  metrics.count_response(200);
  metrics.count_response(200);
  metrics.count_response(429);
  EngineMetrics engine;
  engine.running = 3;
  engine.waiting = 1;
  engine.kv_blocks_used = 25;
  engine.kv_blocks_total = 100;
  engine.prompt_tokens_total = 1234;
  engine.generation_tokens_total = 567;
  engine.requests_total = 9;
  engine.attn_wait_seconds_per_layer = {0.5, 0.25};
  engine.ffn_wait_seconds_per_layer = {1.0, 2.0};
  const std::string text = metrics.render(engine);
  EXPECT_TRUE(contains(text, "# TYPE stepwise_time_to_first_token_seconds histogram\n"));
  EXPECT_TRUE(contains(text, "stepwise_time_to_first_token_seconds_bucket{le=\"0.02\"} 0\n"));
  EXPECT_TRUE(contains(text, "stepwise_time_to_first_token_seconds_bucket{le=\"0.04\"} 1\n"));
  EXPECT_TRUE(contains(text, "stepwise_time_to_first_token_seconds_count 1\n"));
  EXPECT_TRUE(contains(text, "stepwise_inter_token_latency_seconds_bucket{le=\"0.0025\"} 1\n"));
  EXPECT_TRUE(contains(text, "stepwise_inter_token_latency_seconds_count 2\n"));
  EXPECT_TRUE(contains(text, "stepwise_request_latency_seconds_count 1\n"));
  EXPECT_TRUE(contains(text, "# TYPE stepwise_prompt_tokens_total counter\nstepwise_prompt_tokens_total 1234\n"));
  EXPECT_TRUE(contains(text, "stepwise_generation_tokens_total 567\n"));
  EXPECT_TRUE(contains(text, "stepwise_requests_running 3\n"));
  EXPECT_TRUE(contains(text, "stepwise_requests_waiting 1\n"));
  EXPECT_TRUE(contains(text, "stepwise_kv_cache_usage_ratio 0.25\n"));
  EXPECT_TRUE(contains(text, "stepwise_afd_attention_wait_seconds_total{layer=\"1\"} 0.25\n"));
  EXPECT_TRUE(contains(text, "stepwise_afd_ffn_wait_seconds_total{layer=\"0\"} 1\n"));
  EXPECT_TRUE(contains(text, "stepwise_http_responses_total{code=\"200\"} 2\n"));
  EXPECT_TRUE(contains(text, "stepwise_http_responses_total{code=\"429\"} 1\n"));
  // Every sample line belongs to a family declared above it.
  std::string declared;
  size_t start = 0;
  while (start < text.size()) {
    const size_t end = text.find('\n', start);
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    if (line.rfind("# TYPE ", 0) == 0) {
      declared = line.substr(7, line.find(' ', 7) - 7);
    } else if (line[0] != '#') {
      EXPECT_EQ(line.rfind(declared, 0), 0u) << line;
    }
  }
}

TEST(ServingMetrics, EmptyEngineMetricsRender) {
  const std::string text = ServingMetrics().render(EngineMetrics{});
  EXPECT_TRUE(contains(text, "stepwise_kv_cache_usage_ratio 0\n"));
  EXPECT_TRUE(contains(text, "stepwise_time_to_first_token_seconds_bucket{le=\"+Inf\"} 0\n"));
}

}  // namespace
}  // namespace stepwise::http
