#include "vesseltune/train/progress_log.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

namespace vesseltune::train {

void ProgressLog::add(const StepFigures& step) {
  for (size_t i = 0; i < sum_.losses.size(); ++i) sum_.losses[i] += step.losses[i];
  sum_.grad_norm += step.grad_norm;
  sum_.seconds += step.seconds;
  sum_.data_seconds += step.data_seconds;
  sum_.compute_seconds += step.compute_seconds;
  sum_.optimizer_seconds += step.optimizer_seconds;
  sum_.samples += step.samples;
  sum_.tokens += step.tokens;
  steps_ += 1;
}

std::string ProgressLog::line(const RunPosition& at) {
  const double n = static_cast<double>(steps_);
  const auto& l = sum_.losses;
  std::ostringstream line;
  line << "iter: " << at.step << ", loss_mask: " << l[0] / n << ", loss_dice: " << l[1] / n;
  if (at.cldice) line << ", loss_cldice: " << l[2] / n;
  line << ", llm_loss: " << l[3] / n << ", total: " << (l[0] + l[1] + l[2] + l[3]) / n << ", lr: " << at.lr
       << ", grad_norm: " << sum_.grad_norm / n << ", time: " << sum_.seconds / n << " s/iter (data "
       << sum_.data_seconds / n << ", fwd+bwd " << sum_.compute_seconds / n << ", optimizer "
       << sum_.optimizer_seconds / n << "), samples/s: " << sum_.samples / sum_.seconds
       << ", tokens/s: " << sum_.tokens / sum_.seconds;
  if (at.device_gib >= 0) line << ", mem: " << at.device_gib << " GiB";
  line << ", host: " << at.host_gib << " GiB, epoch: " << at.epoch
       << ", eta: " << format_duration(sum_.seconds / n * static_cast<double>(at.total_steps - at.step));
  *this = ProgressLog{};
  return line.str();
}

std::string format_duration(double seconds) {
  const auto total = static_cast<int64_t>(std::max(0.0, seconds));
  char text[32];
  std::snprintf(text, sizeof(text), "%lld:%02lld:%02lld", static_cast<long long>(total / 3600),
                static_cast<long long>(total / 60 % 60), static_cast<long long>(total % 60));
  return text;
}

}  // namespace vesseltune::train
