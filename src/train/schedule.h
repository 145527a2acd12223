// Learning-rate schedules: linear warmup from 0, then cosine / linear decay to min_lr at max_steps, or constant.
#pragma once
#include <cstdint>
#include <string>

namespace stepwise {

struct LrSchedule {
  std::string kind = "cosine";  // cosine | linear | constant
  double lr = 1e-3, min_lr = 0;
  int64_t warmup_steps = 0, max_steps = 1;

  // Learning rate of optimizer step `step` (counting from 1).
  double at(int64_t step) const;
};

}  // namespace stepwise
