// Implementation of learning-rate schedules (see schedule.h).
#include "train/schedule.h"

#include <algorithm>
#include <cmath>

namespace stepwise {

double LrSchedule::at(int64_t step) const {
  if (warmup_steps > 0 && step <= warmup_steps) return lr * static_cast<double>(step) / warmup_steps;
  if (kind == "constant") return lr;
  const int64_t span = std::max<int64_t>(1, max_steps - warmup_steps);
  const double progress = std::clamp(static_cast<double>(step - warmup_steps) / span, 0.0, 1.0);
  const double factor = kind == "linear" ? 1.0 - progress : 0.5 * (1.0 + std::cos(M_PI * progress));
  return min_lr + (lr - min_lr) * factor;
}

}  // namespace stepwise
