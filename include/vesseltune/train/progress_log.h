#pragma once
// The training log's step line: means over the steps since the last line of the losses (already averaged over
// ranks), grad norm and phase times, throughput over all ranks, memory, epoch and the time left.
//   iter: 10, loss_mask: …, loss_dice: …, llm_loss: …, total: …, lr: …, grad_norm: …, time: … s/iter (data …,
//   fwd+bwd …, optimizer …), samples/s: …, tokens/s: …, mem: … GiB, host: … GiB, epoch: …, eta: 0:12:34

#include <array>
#include <cstdint>
#include <string>

namespace vesseltune::train {

// One optimizer step as the log line counts it.
struct StepFigures {
  std::array<double, 4> losses{};  // loss_mask, loss_dice, loss_cldice, llm_loss
  double grad_norm = 0;
  double seconds = 0, data_seconds = 0, compute_seconds = 0, optimizer_seconds = 0;
  int64_t samples = 0, tokens = 0;  // over all ranks
};

// Where the run stands when the line is written.
struct RunPosition {
  int64_t step = 0, total_steps = 0, epoch = 0;
  double lr = 0;
  double device_gib = -1;  // < 0: no device memory to report (CPU)
  double host_gib = 0;
  bool cldice = false;     // the clDice loss is on: its column is shown
};

class ProgressLog {
 public:
  void add(const StepFigures& step);
  // The line for the steps added since the last one; starts counting anew.
  std::string line(const RunPosition& at);

 private:
  StepFigures sum_;
  int64_t steps_ = 0;
};

// H:MM:SS.
std::string format_duration(double seconds);

}  // namespace vesseltune::train
