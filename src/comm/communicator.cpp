#include "vesseltune/comm/communicator.h"

#include "vesseltune/comm/watchdog.h"
#include "vesseltune/core/check.h"

namespace vesseltune::comm {

Communicator::Communicator(World world, std::shared_ptr<CollectiveWatchdog> watchdog)
    : world_(std::move(world)), watchdog_(std::move(watchdog)) {}

void Communicator::set_phase(const std::string& phase) { phase_ = phase; }

std::string Communicator::watch_label(const std::string& label) const {
  return label + (phase_.empty() ? "" : ", " + phase_) + " on " + world_.describe(world_.rank);
}

void check_collective_dtype(const at::Tensor& tensor, const std::string& label) {
  const auto dtype = tensor.scalar_type();
  VT_CHECK(dtype == at::kBFloat16 || dtype == at::kFloat || dtype == at::kDouble || dtype == at::kLong,
           label, ": unsupported dtype ", dtype, " (collectives take bf16, fp32, fp64, int64)");
  VT_CHECK(tensor.is_contiguous(), label, ": tensor must be contiguous");
}

}  // namespace vesseltune::comm
