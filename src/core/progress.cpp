// Implementation of Progress (see progress.h). Draws to stderr; at most ~10 redraws/s on a tty, one line per 10 s
// (and at the end) when stderr is not a terminal.
#include "core/progress.h"

#include <unistd.h>

#include <cstdio>

namespace stepwise {

Progress::Progress(std::string label, int64_t total)
    : label_(std::move(label)), total_(total), tty_(::isatty(2)), start_(std::chrono::steady_clock::now()),
      last_draw_(start_ - std::chrono::hours(1)) {}

void Progress::update(int64_t done, const std::string& status) {
  auto now = std::chrono::steady_clock::now();
  auto min_gap = tty_ ? std::chrono::milliseconds(100) : std::chrono::milliseconds(10000);
  if (now - last_draw_ < min_gap && done < total_) return;
  last_draw_ = now;
  draw(done, status, false);
}

void Progress::finish(const std::string& status) { draw(total_, status, true); }

void Progress::draw(int64_t done, const std::string& status, bool final_line) {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double frac = total_ > 0 ? static_cast<double>(done) / total_ : 1.0;
  double eta = frac > 0 ? elapsed * (1 - frac) / frac : 0;
  if (tty_) {
    const int width = 30;
    int filled = static_cast<int>(frac * width);
    std::string bar(filled, '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "\r\033[K%s [%s] %lld/%lld %.0fs eta %.0fs %s", label_.c_str(), bar.c_str(),
                 static_cast<long long>(done), static_cast<long long>(total_), elapsed, eta, status.c_str());
    if (final_line) std::fputc('\n', stderr);
  } else {
    std::fprintf(stderr, "%s %lld/%lld %.0fs %s\n", label_.c_str(), static_cast<long long>(done),
                 static_cast<long long>(total_), elapsed, status.c_str());
  }
  std::fflush(stderr);
}

}  // namespace stepwise
