// Implementation of the SVG bar chart (see report_svg.h). Layout is computed from the counts of categories and
// series; the y axis always spans 0-100 so that charts of different models compare at a glance.
#include "eval/report_svg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numbers>

#include "core/error.h"
#include "eval/utf8.h"

namespace stepwise::eval {

namespace {

constexpr double kBarWidth = 18, kGroupGap = 22, kPlotHeight = 260;
constexpr double kMinLeft = 60, kRight = 30, kTop = 60, kMinBottom = 60;
constexpr double kLabelAngle = 35;  // degrees the category labels are rotated by
constexpr const char* kPalette[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2",
                                    "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};

std::string xml_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

// Rough rendered width of a 12px label: ~7px per Latin character, ~12px per CJK (wide) character.
double text_width(const std::string& text) {
  double width = 0;
  for (char32_t c : utf8_decode(text)) width += c < 0x2E80 ? 7.0 : 12.0;
  return width;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

}  // namespace

std::string render_bar_chart(const BarChart& chart) {
  for (const BarSeries& s : chart.series)
    if (s.values.size() != chart.categories.size())
      fail("bar chart '", chart.title, "': series '", s.name, "' has ", s.values.size(), " values for ",
           chart.categories.size(), " categories");
  const size_t n_series = std::max<size_t>(1, chart.series.size());
  const double group_width = static_cast<double>(n_series) * kBarWidth + kGroupGap;
  const double plot_width = std::max(200.0, static_cast<double>(chart.categories.size()) * group_width);
  // Rotated labels hang down and to the left of their category: size the margins so that none is cut off.
  const double angle = kLabelAngle * std::numbers::pi / 180;
  const double cos_a = std::cos(angle), sin_a = std::sin(angle);
  double left = kMinLeft, bottom = kMinBottom;
  for (size_t c = 0; c < chart.categories.size(); ++c) {
    const double label = text_width(chart.categories[c]);
    const double anchor_offset = (static_cast<double>(c) + 0.5) * group_width;  // label anchor, from the plot's left
    left = std::max(left, label * cos_a - anchor_offset + 10);
    bottom = std::max(bottom, label * sin_a + 30);
  }
  const double width = left + plot_width + kRight;
  const double height = kTop + kPlotHeight + bottom;
  const double base_y = kTop + kPlotHeight;
  auto y_of = [&](double percent) { return base_y - std::clamp(percent, 0.0, 100.0) / 100.0 * kPlotHeight; };

  std::string svg = cat("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"", num(width), "\" height=\"",
                        num(height), "\" viewBox=\"0 0 ", num(width), " ", num(height), "\" font-family=\"",
                        "Noto Sans CJK SC, Source Han Sans SC, Microsoft YaHei, sans-serif\" font-size=\"12\">\n");
  svg += cat("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
  svg += cat("<text x=\"", num(width / 2), "\" y=\"24\" text-anchor=\"middle\" font-size=\"16\">",
             xml_escape(chart.title), "</text>\n");
  // y axis: gridlines every 20%.
  for (int tick = 0; tick <= 100; tick += 20) {
    const double y = y_of(tick);
    svg += cat("<line x1=\"", num(left), "\" y1=\"", num(y), "\" x2=\"", num(left + plot_width), "\" y2=\"", num(y),
               "\" stroke=\"#dddddd\"/>\n");
    svg += cat("<text x=\"", num(left - 6), "\" y=\"", num(y + 4), "\" text-anchor=\"end\">", tick, "</text>\n");
  }
  svg += cat("<text x=\"16\" y=\"", num(kTop + kPlotHeight / 2), "\" transform=\"rotate(-90 16 ",
             num(kTop + kPlotHeight / 2), ")\" text-anchor=\"middle\">", xml_escape(chart.y_label), "</text>\n");
  svg += cat("<line x1=\"", num(left), "\" y1=\"", num(base_y), "\" x2=\"", num(left + plot_width), "\" y2=\"",
             num(base_y), "\" stroke=\"black\"/>\n");
  // bars, value labels and category labels.
  for (size_t c = 0; c < chart.categories.size(); ++c) {
    const double group_x = left + static_cast<double>(c) * group_width + kGroupGap / 2;
    for (size_t s = 0; s < chart.series.size(); ++s) {
      const double v = chart.series[s].values[c];
      const double x = group_x + static_cast<double>(s) * kBarWidth;
      const std::string label_x = num(x + kBarWidth / 2);
      if (std::isnan(v)) {
        svg += cat("<text x=\"", label_x, "\" y=\"", num(base_y - 4), "\" text-anchor=\"middle\" font-size=\"9\" ",
                   "fill=\"#888888\">n/a</text>\n");
        continue;
      }
      const double y = y_of(v);
      svg += cat("<rect x=\"", num(x), "\" y=\"", num(y), "\" width=\"", num(kBarWidth - 2), "\" height=\"",
                 num(base_y - y), "\" fill=\"", kPalette[s % std::size(kPalette)], "\"><title>",
                 xml_escape(chart.series[s].name), " — ", xml_escape(chart.categories[c]), ": ", num(v),
                 "</title></rect>\n");
      svg += cat("<text x=\"", label_x, "\" y=\"", num(y - 3), "\" text-anchor=\"middle\" font-size=\"9\">", num(v),
                 "</text>\n");
    }
    const double label_x = group_x + static_cast<double>(n_series) * kBarWidth / 2;
    svg += cat("<text x=\"", num(label_x), "\" y=\"", num(base_y + 14), "\" text-anchor=\"end\" transform=\"rotate(-35 ",
               num(label_x), " ", num(base_y + 14), ")\">", xml_escape(chart.categories[c]), "</text>\n");
  }
  // legend, one row at the top.
  double legend_x = left;
  for (size_t s = 0; s < chart.series.size(); ++s) {
    svg += cat("<rect x=\"", num(legend_x), "\" y=\"36\" width=\"12\" height=\"12\" fill=\"",
               kPalette[s % std::size(kPalette)], "\"/>\n");
    svg += cat("<text x=\"", num(legend_x + 16), "\" y=\"46\">", xml_escape(chart.series[s].name), "</text>\n");
    legend_x += 28 + text_width(chart.series[s].name);
  }
  svg += "</svg>\n";
  return svg;
}

}  // namespace stepwise::eval
