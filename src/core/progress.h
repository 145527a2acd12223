// Progress reporting for long loops: a redrawn bar on a terminal, plain periodic lines otherwise (logs, CI).
// Usage: Progress p("train", total); p.update(done, "loss 2.31"); p.finish();
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace stepwise {

class Progress {
 public:
  Progress(std::string label, int64_t total);
  void update(int64_t done, const std::string& status = "");
  void finish(const std::string& status = "");

 private:
  void draw(int64_t done, const std::string& status, bool final_line);
  std::string label_;
  int64_t total_;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace stepwise
