#include "vesseltune/optim/zero_config.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "vesseltune/core/check.h"

namespace vesseltune::optim {

const char* to_string(OffloadDevice device) { return device == OffloadDevice::cpu ? "cpu" : "none"; }

OffloadDevice parse_offload_device(const std::string& text) {
  if (text == "none") return OffloadDevice::none;
  if (text == "cpu") return OffloadDevice::cpu;
  VT_FAIL("offload_optimizer.device must be \"none\" or \"cpu\", got \"", text, "\" (nvme is not supported)");
}

int64_t ZeroConfig::host_state_numel(int64_t shard_numel) const {
  if (offload != OffloadDevice::cpu) return 0;
  return std::min(shard_numel, static_cast<int64_t>(std::llround(offload_ratio * static_cast<double>(shard_numel))));
}

std::string ZeroConfig::describe() const {
  std::ostringstream out;
  out << "stage " << stage << ", overlap_comm " << overlap_comm << ", offload " << to_string(offload);
  if (offload == OffloadDevice::cpu && offload_ratio != 1.0) out << " ratio " << offload_ratio;
  if (delayed_update) out << " delayed after " << delayed_update_warmup;
  out << ", pin_memory "
      << pin_memory << ", bucket " << reduce_bucket_numel << ", clip " << gradient_clipping << ", betas " << beta1 << "/"
      << beta2 << ", eps " << eps << ", weight_decay " << weight_decay;
  return out.str();
}

void ZeroConfig::validate() const {
  VT_CHECK(stage >= 0 && stage <= 2, "zero_optimization.stage must be 0, 1 or 2, got ", stage,
           " (stage 3 is not supported)");
  VT_CHECK(reduce_bucket_numel > 0, "zero_optimization.reduce_bucket_size must be positive, got ", reduce_bucket_numel);
  VT_CHECK(gradient_clipping >= 0, "gradient_clipping must be >= 0, got ", gradient_clipping);
  VT_CHECK(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, "optimizer betas must lie in [0, 1), got ", beta1, ", ",
           beta2);
  VT_CHECK(eps > 0, "optimizer eps must be positive, got ", eps);
  VT_CHECK(weight_decay >= 0, "weight_decay must be >= 0, got ", weight_decay);
  VT_CHECK(offload_ratio > 0 && offload_ratio <= 1, "offload_optimizer.ratio must lie in (0, 1], got ", offload_ratio,
           " (offload_optimizer.device none keeps all of the state on the device)");
  VT_CHECK(!delayed_update || offload == OffloadDevice::cpu,
           "a delayed update delays the host part of the optimizer: it needs offload_optimizer.device cpu");
  VT_CHECK(delayed_update_warmup >= 0, "delayed_update_warmup must be >= 0, got ", delayed_update_warmup);
  VT_CHECK(optimizer_threads >= 0, "optimizer_threads must be >= 0, got ", optimizer_threads);
}

}  // namespace vesseltune::optim
