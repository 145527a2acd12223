// A small dependency-free SVG grouped bar chart for eval reports: categories along x, one coloured bar per series
// in each category, values in percent (0-100) with gridlines, value labels, rotated category labels and a legend.
#pragma once
#include <string>
#include <vector>

namespace stepwise::eval {

struct BarSeries {
  std::string name;            // legend entry (a model: "base", "sft", "dpo")
  std::vector<double> values;  // one per category, in percent; NaN = missing (no bar, "n/a")
};

struct BarChart {
  std::string title;
  std::string y_label = "%";
  std::vector<std::string> categories;
  std::vector<BarSeries> series;
};

// The chart as a standalone SVG document (UTF-8; text XML-escaped). Throws Error when a series' value count does
// not match the categories.
std::string render_bar_chart(const BarChart& chart);

}  // namespace stepwise::eval
