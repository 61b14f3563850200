#include "vesseltune/optim/lr_schedule.h"

#include <algorithm>
#include <cmath>

namespace vesseltune::optim {

double LrSchedule::lr_at(int64_t step) const {
  if (step < warmup_steps) {
    const double progress = static_cast<double>(step) / static_cast<double>(warmup_steps);
    return lr * (start_factor + (1.0 - start_factor) * progress);
  }
  const int64_t span = std::max<int64_t>(1, total_steps - warmup_steps);
  const double progress = std::min(1.0, static_cast<double>(step - warmup_steps) / static_cast<double>(span));
  return min_lr + (lr - min_lr) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

}  // namespace vesseltune::optim
