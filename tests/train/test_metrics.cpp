// Tests of metrics.jsonl: appending, truncation on resume, and the SVG plot containing both curves.
#include <gtest/gtest.h>

#include "train/metrics.h"

using namespace stepwise;

TEST(Metrics, ResumeDropsLaterRecords) {
  fs::path p = fs::temp_directory_path() / "stepwise_metrics" / "metrics.jsonl";
  {
    MetricsLog log(p, -1);
    for (int s = 1; s <= 6; ++s) log.write({{"step", s}, {"loss", 5.0 - 0.5 * s}, {"lr", 0.001}});
  }
  {
    MetricsLog log(p, 4);  // resumed from step 4: steps 5 and 6 are redone
    log.write({{"step", 5}, {"loss", 1.0}, {"lr", 0.001}});
  }
  auto recs = read_metrics(p);
  ASSERT_EQ(recs.size(), 5u);
  EXPECT_EQ(recs.back()["step"], 5);
  EXPECT_EQ(recs.back()["loss"], 1.0);
  {
    MetricsLog log(p, -1);  // a fresh run starts an empty file
  }
  EXPECT_TRUE(read_metrics(p).empty());
}

TEST(Metrics, PlotHasLossEvalAndLr) {
  std::vector<nlohmann::json> recs;
  for (int s = 1; s <= 40; ++s) {
    nlohmann::json r = {{"step", s}, {"loss", 6.0 / s}, {"lr", 0.001 * s / 40}};
    if (s % 10 == 0) r["eval_loss"] = 6.5 / s;
    recs.push_back(r);
  }
  std::string svg = plot_metrics_svg(recs, "pretrain");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("train loss"), std::string::npos);
  EXPECT_NE(svg.find("eval loss"), std::string::npos);
  EXPECT_NE(svg.find("learning rate"), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
  size_t polylines = 0;
  for (size_t pos = 0; (pos = svg.find("<polyline", pos)) != std::string::npos; ++pos) ++polylines;
  EXPECT_EQ(polylines, 3u);
}
