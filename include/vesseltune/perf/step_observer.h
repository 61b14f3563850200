#pragma once
// The training loop's hooks for whatever measures it (benchmark mode: BenchmarkObserver). The loop calls them at
// fixed points of every optimizer step; each does nothing by default, so a plain run carries no measuring code.

#include <cstdint>

#include "vesseltune/data/sample.h"
#include "vesseltune/optim/zero_optimizer.h"
#include "vesseltune/setup/batch_encoder.h"

namespace vesseltune::perf {

// One optimizer step of this rank, by the host's wall clock.
struct StepTimes {
  double data_seconds = 0;          // waiting for the loader
  double step_seconds = 0;          // the whole step, with the step statistics' all-reduce
  int64_t samples = 0, tokens = 0;  // this rank's
};

class StepObserver {
 public:
  virtual ~StepObserver() = default;
  virtual void step_begins(int64_t steps_done) {}
  virtual void micro_step_begins() {}
  virtual void forward_done() {}
  virtual void backward_done(const data::Batch& batch, const setup::EncodedBatch& encoded) {}
  // OPTIMIZER: for its transfer times, which wait for the step's transfers (read them only where measuring).
  virtual void step_ends(int64_t steps_done, const StepTimes& times, const optim::StepResult& result,
                         const optim::ZeroOptimizer& optimizer) {}
  // True once the observer has seen every step it wanted: the loop ends there, without saving.
  virtual bool ends_run(int64_t steps_done) const { return false; }
};

}  // namespace vesseltune::perf
