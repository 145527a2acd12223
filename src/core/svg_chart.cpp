// Implementation of the SVG line and bar charts (see svg_chart.h).
#include "core/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

namespace stepwise {

namespace {
const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

std::string fmt(double v) {
  char buf[32];
  if (v != 0 && (std::abs(v) < 1e-3 || std::abs(v) >= 1e5))
    std::snprintf(buf, sizeof buf, "%.2g", v);
  else
    std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '&') out += "&amp;";
    else out += c;
  }
  return out;
}

// Five "nice" tick values covering [lo, hi].
std::vector<double> ticks(double lo, double hi) {
  std::vector<double> t;
  for (int i = 0; i <= 4; ++i) t.push_back(lo + (hi - lo) * i / 4);
  return t;
}

void header(std::ostringstream& os, int w, int h) {
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << w << "\" height=\"" << h << "\" viewBox=\"0 0 " << w
     << " " << h << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" "
     << "fill=\"white\"/>\n";
}
}  // namespace

std::string svg_line_chart(const std::vector<LinePanel>& panels, int width, int panel_height) {
  std::ostringstream os;
  header(os, width, panel_height * static_cast<int>(panels.size()));
  const int left = 70, right = 150, top = 30, bottom = 40;
  for (size_t p = 0; p < panels.size(); ++p) {
    const LinePanel& panel = panels[p];
    const int y0 = static_cast<int>(p) * panel_height;
    const int pw = width - left - right, ph = panel_height - top - bottom;
    double xmin = std::numeric_limits<double>::infinity(), xmax = -xmin, ymin = xmin, ymax = -xmin;
    auto ty = [&](double y) { return panel.log_y ? std::log10(std::max(y, 1e-30)) : y; };
    for (const auto& s : panel.series)
      for (auto [x, y] : s.points) {
        if (!std::isfinite(y)) continue;
        xmin = std::min(xmin, x), xmax = std::max(xmax, x);
        ymin = std::min(ymin, ty(y)), ymax = std::max(ymax, ty(y));
      }
    if (!std::isfinite(xmin)) xmin = 0, xmax = 1, ymin = 0, ymax = 1;
    if (xmax == xmin) xmax = xmin + 1;
    if (ymax == ymin) ymax = ymin + 1;
    auto sx = [&](double x) { return left + (x - xmin) / (xmax - xmin) * pw; };
    auto sy = [&](double y) { return y0 + top + ph - (ty(y) - ymin) / (ymax - ymin) * ph; };
    os << "<text x=\"" << left << "\" y=\"" << y0 + 18 << "\" font-size=\"14\" font-weight=\"bold\">"
       << escape(panel.title) << "</text>\n";
    os << "<rect x=\"" << left << "\" y=\"" << y0 + top << "\" width=\"" << pw << "\" height=\"" << ph
       << "\" fill=\"none\" stroke=\"#444\"/>\n";
    for (double t : ticks(ymin, ymax)) {
      double yy = y0 + top + ph - (t - ymin) / (ymax - ymin) * ph;
      os << "<line x1=\"" << left << "\" x2=\"" << left + pw << "\" y1=\"" << yy << "\" y2=\"" << yy
         << "\" stroke=\"#ddd\"/><text x=\"" << left - 6 << "\" y=\"" << yy + 4 << "\" text-anchor=\"end\">"
         << fmt(panel.log_y ? std::pow(10, t) : t) << "</text>\n";
    }
    for (double t : ticks(xmin, xmax))
      os << "<text x=\"" << sx(t) << "\" y=\"" << y0 + top + ph + 16 << "\" text-anchor=\"middle\">" << fmt(t)
         << "</text>\n";
    os << "<text x=\"" << left + pw / 2 << "\" y=\"" << y0 + panel_height - 6 << "\" text-anchor=\"middle\">"
       << escape(panel.x_label) << "</text>\n";
    os << "<text transform=\"translate(14," << y0 + top + ph / 2 << ") rotate(-90)\" text-anchor=\"middle\">"
       << escape(panel.y_label) << "</text>\n";
    for (size_t s = 0; s < panel.series.size(); ++s) {
      const char* color = kColors[s % 8];
      os << "<polyline fill=\"none\" stroke=\"" << color << "\" stroke-width=\"1.5\" points=\"";
      for (auto [x, y] : panel.series[s].points)
        if (std::isfinite(y)) os << fmt(sx(x)) << "," << fmt(sy(y)) << " ";
      os << "\"/>\n";
      if (panel.series[s].points.size() == 1 || panel.series[s].points.size() < 30)  // few points: mark them
        for (auto [x, y] : panel.series[s].points)
          if (std::isfinite(y)) os << "<circle cx=\"" << sx(x) << "\" cy=\"" << sy(y) << "\" r=\"2.5\" fill=\"" << color << "\"/>\n";
      const int ly = y0 + top + 14 + static_cast<int>(s) * 18;
      os << "<line x1=\"" << left + pw + 12 << "\" x2=\"" << left + pw + 32 << "\" y1=\"" << ly - 4 << "\" y2=\""
         << ly - 4 << "\" stroke=\"" << color << "\" stroke-width=\"3\"/><text x=\"" << left + pw + 36 << "\" y=\""
         << ly << "\">" << escape(panel.series[s].name) << "</text>\n";
    }
  }
  os << "</svg>\n";
  return os.str();
}

std::string svg_bar_chart(const std::string& title, const std::vector<std::string>& series_names,
                          const std::vector<BarGroup>& groups, const std::string& y_label, int width, int height) {
  std::ostringstream os;
  header(os, width, height);
  const int left = 60, right = 150, top = 36, bottom = 60;
  const int pw = width - left - right, ph = height - top - bottom;
  double ymax = 0;
  for (const auto& g : groups)
    for (double v : g.values)
      if (std::isfinite(v)) ymax = std::max(ymax, v);
  if (ymax <= 0) ymax = 1;
  ymax *= 1.1;
  os << "<text x=\"" << left << "\" y=\"22\" font-size=\"14\" font-weight=\"bold\">" << escape(title) << "</text>\n";
  for (double t : ticks(0, ymax)) {
    double yy = top + ph - t / ymax * ph;
    os << "<line x1=\"" << left << "\" x2=\"" << left + pw << "\" y1=\"" << yy << "\" y2=\"" << yy
       << "\" stroke=\"#ddd\"/><text x=\"" << left - 6 << "\" y=\"" << yy + 4 << "\" text-anchor=\"end\">" << fmt(t)
       << "</text>\n";
  }
  os << "<text transform=\"translate(14," << top + ph / 2 << ") rotate(-90)\" text-anchor=\"middle\">"
     << escape(y_label) << "</text>\n";
  const size_t ns = std::max<size_t>(1, series_names.size());
  const double gw = groups.empty() ? pw : static_cast<double>(pw) / groups.size();
  const double bw = gw * 0.8 / ns;
  for (size_t g = 0; g < groups.size(); ++g) {
    const double gx = left + g * gw + gw * 0.1;
    for (size_t s = 0; s < groups[g].values.size() && s < ns; ++s) {
      double v = groups[g].values[s];
      if (!std::isfinite(v)) continue;
      double h = v / ymax * ph;
      os << "<rect x=\"" << gx + s * bw << "\" y=\"" << top + ph - h << "\" width=\"" << bw * 0.95 << "\" height=\""
         << h << "\" fill=\"" << kColors[s % 8] << "\"/><text x=\"" << gx + s * bw + bw / 2 << "\" y=\""
         << top + ph - h - 3 << "\" text-anchor=\"middle\" font-size=\"10\">" << fmt(v) << "</text>\n";
    }
    os << "<text x=\"" << gx + gw * 0.4 << "\" y=\"" << top + ph + 16 << "\" text-anchor=\"middle\">"
       << escape(groups[g].label) << "</text>\n";
  }
  os << "<line x1=\"" << left << "\" x2=\"" << left + pw << "\" y1=\"" << top + ph << "\" y2=\"" << top + ph
     << "\" stroke=\"#444\"/>\n";
  for (size_t s = 0; s < series_names.size(); ++s) {
    const int ly = top + 14 + static_cast<int>(s) * 18;
    os << "<rect x=\"" << left + pw + 12 << "\" y=\"" << ly - 10 << "\" width=\"14\" height=\"10\" fill=\""
       << kColors[s % 8] << "\"/><text x=\"" << left + pw + 32 << "\" y=\"" << ly << "\">" << escape(series_names[s])
       << "</text>\n";
  }
  os << "</svg>\n";
  return os.str();
}

}  // namespace stepwise
