// write_metrics PATH: a metrics file as the trainer writes it, for the h5py and vesseltune-report tests. Steps
// 1..30 of "train" with the trainer's columns, validation at steps 10, 20, 30; then a resume from the checkpoint of
// step 20 that logs steps 21..30 again. The first pass logs those steps with loss_mask = -1 (train) and
// samples = -1 (validation), which must not survive.
// The value formulas are repeated, independently, in the Python tests that read the file.
#include <algorithm>
#include <cmath>
#include <iostream>

#include "vesseltune/io/metrics_file.h"

using vesseltune::io::MetricsFile;

namespace {

void log_train(MetricsFile& file, int step, bool stale) {
  const double s = step;
  const double loss_mask = stale ? -1.0 : 1.0 / s, loss_dice = 0.5 / s + 0.1, loss_cldice = 0.3 - 0.001 * s;
  const double llm_loss = step == 7 ? NAN : 2.0 / (s + 1.0);  // a skipped step's loss
  file.append("train", {{"step", s},
                        {"epoch", std::floor((s - 1.0) / 10.0)},
                        {"loss_mask", loss_mask},
                        {"loss_dice", loss_dice},
                        {"loss_cldice", loss_cldice},
                        {"llm_loss", llm_loss},
                        {"total", loss_mask + loss_dice + loss_cldice + llm_loss},
                        {"lr", 1e-4 * std::min(1.0, s / 5.0)},
                        {"grad_norm", 1.0 + 1.0 / s},
                        {"step_time_s", 0.5},
                        {"samples_per_s", 32.0 + step % 3},
                        {"tokens_per_s", 1000.0 + s},
                        {"gpu_mem_gib", 0.0},
                        {"host_mem_gib", 3.0 + 0.01 * s},
                        {"skipped_steps", step >= 7 ? 1.0 : 0.0}});
}

void log_validation(MetricsFile& file, int step, bool stale) {
  const double dice_fov = step == 10 ? 0.6 : step == 20 ? 0.8 : 0.75;
  file.append("validation", {{"step", double(step)},
                             {"dice_fov", dice_fov},
                             {"dice_full", dice_fov - 0.05},
                             {"best_dice_fov", step == 10 ? 0.6 : 0.8},
                             {"loss_mask", 4.0 / step},
                             {"loss_dice", 1.0 - dice_fov},
                             {"samples", stale ? -1.0 : 20.0}});
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: write_metrics PATH\n";
    return 2;
  }
  {
    MetricsFile first_run(argv[1], -1);
    for (int step = 1; step <= 30; ++step) {
      log_train(first_run, step, step > 20);
      if (step % 10 == 0) log_validation(first_run, step, step > 20);
    }
  }
  MetricsFile resumed(argv[1], 20);
  for (int step = 21; step <= 30; ++step) {
    log_train(resumed, step, false);
    if (step % 10 == 0) log_validation(resumed, step, false);
  }
  return 0;
}
