#pragma once
// The learning rate of each optimizer step, as Sa2VA's xtuner recipe sets it: a linear warm-up from
// start_factor · lr to lr over the first warmup_steps, then cosine annealing to min_lr at total_steps
// (mmengine's LinearLR + CosineAnnealingLR, counted in optimizer steps). A pure function of the step, so a
// resumed run needs only the step count.

#include <cstdint>

namespace vesseltune::optim {

struct LrSchedule {
  double lr = 1e-4;
  double min_lr = 0.0;
  int64_t warmup_steps = 0;
  int64_t total_steps = 1;
  double start_factor = 1e-5;  // mmengine LinearLR's, as in the Sa2VA configs

  // Steps are counted from 0 (the first optimizer step uses lr_at(0)).
  double lr_at(int64_t step) const;
};

}  // namespace vesseltune::optim
