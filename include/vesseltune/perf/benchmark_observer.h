#pragma once
// Benchmark mode's observer of the training loop: after WARMUP steps it times MEASURED steps phase by phase
// (benchmark_report.h: the device's forward and backward by stream events, the optimizer's own phase times, the
// data wait and the whole step by the host clock), optionally profiling them (op_profile.h), and then ends the run.

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "vesseltune/core/torch_compat.h"
#include "vesseltune/perf/benchmark_report.h"
#include "vesseltune/perf/step_observer.h"

namespace vesseltune::perf {

class BenchmarkObserver : public StepObserver {
 public:
  // FIRST_STEP: steps done when the run starts. PROFILE: profile the measured steps (the caller's rank 0).
  BenchmarkObserver(int64_t first_step, int64_t warmup, int64_t measured, bool profile, at::Device device);

  void step_begins(int64_t steps_done) override;
  void micro_step_begins() override;
  void forward_done() override;
  void backward_done(const data::Batch& batch, const setup::EncodedBatch& encoded) override;
  void step_ends(int64_t steps_done, const StepTimes& times, const optim::StepResult& result,
                 const optim::ZeroOptimizer& optimizer) override;
  bool ends_run(int64_t steps_done) const override { return steps_done == end_; }

  // Collective over WORLD: ends the profile (its table logged, the Chrome trace written to TRACE_FILE) and
  // summarises the measured steps with the device's and the host's peak memory.
  BenchmarkResult finish(const BenchmarkSetup& setup, const setup::ModelShapes& shapes, comm::Communicator& comm,
                         const std::string& trace_file);

 private:
  bool measured(int64_t steps_done) const { return steps_done > end_ - measured_steps_; }

  at::Device device_;
  int64_t end_, measured_steps_;
  bool profiling_;
  compat::StreamClock clock_;
  std::vector<std::array<int, 3>> marks_;  // per micro-step: start, forward done, backward done
  StepPhases phases_;                      // of the step under way
  std::vector<StepPhases> steps_;          // the measured ones
};

}  // namespace vesseltune::perf
