// Dependency-free SVG charts for reports: line charts (loss / lr curves) and grouped bar charts (eval results).
// Output is a complete standalone SVG document string.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace stepwise {

struct LineSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y)
};

struct LinePanel {
  std::string title, x_label, y_label;
  std::vector<LineSeries> series;
  bool log_y = false;
};

// Panels stacked vertically, each with axes, ticks, a legend and one polyline per series.
std::string svg_line_chart(const std::vector<LinePanel>& panels, int width = 720, int panel_height = 260);

struct BarGroup {
  std::string label;            // e.g. a metric name
  std::vector<double> values;   // one per series (NaN: no bar)
};

// Grouped bar chart: one colour per series name, groups along x; values labelled above bars.
std::string svg_bar_chart(const std::string& title, const std::vector<std::string>& series_names,
                          const std::vector<BarGroup>& groups, const std::string& y_label, int width = 720,
                          int height = 360);

}  // namespace stepwise
