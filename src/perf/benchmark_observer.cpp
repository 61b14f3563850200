#include "vesseltune/perf/benchmark_observer.h"

#include <numeric>

#include "vesseltune/core/log.h"
#include "vesseltune/perf/memory_use.h"
#include "vesseltune/perf/op_profile.h"

namespace vesseltune::perf {

BenchmarkObserver::BenchmarkObserver(int64_t first_step, int64_t warmup, int64_t measured, bool profile,
                                     at::Device device)
    : device_(device),
      end_(first_step + warmup + measured),
      measured_steps_(measured),
      profiling_(profile),
      clock_(device.is_cuda()) {}

void BenchmarkObserver::step_begins(int64_t steps_done) {
  if (profiling_ && steps_done == end_ - measured_steps_) compat::start_op_profiler(device_.is_cuda());
  phases_ = StepPhases{};
  marks_.clear();
}

void BenchmarkObserver::micro_step_begins() { marks_.push_back({clock_.mark(), 0, 0}); }

void BenchmarkObserver::forward_done() { marks_.back()[1] = clock_.mark(); }

void BenchmarkObserver::backward_done(const data::Batch& batch, const setup::EncodedBatch& encoded) {
  marks_.back()[2] = clock_.mark();
  phases_.tiles += std::accumulate(batch.tiles_per_sample.begin(), batch.tiles_per_sample.end(), int64_t{0});
  phases_.labelled_tokens += encoded.labelled_tokens;
}

void BenchmarkObserver::step_ends(int64_t steps_done, const StepTimes& times, const optim::StepResult& result,
                                  const optim::ZeroOptimizer& optimizer) {
  if (measured(steps_done)) {
    phases_.data_ms = 1000.0 * times.data_seconds;
    for (const auto& m : marks_) {
      phases_.forward_ms += clock_.elapsed_ms(m[0], m[1]);
      phases_.backward_ms += clock_.elapsed_ms(m[1], m[2]);
    }
    phases_.reduce_wait_ms = result.times.reduce_wait_ms;
    phases_.optimizer_ms = result.times.norm_ms + result.times.update_ms;
    phases_.gather_wait_ms = result.times.gather_wait_ms;
    phases_.step_ms = 1000.0 * times.step_seconds;
    phases_.transfers = optimizer.transfer_times();
    phases_.samples = times.samples;
    phases_.tokens = times.tokens;
    steps_.push_back(phases_);
  }
  clock_.clear();
}

BenchmarkResult BenchmarkObserver::finish(const BenchmarkSetup& setup, const setup::ModelShapes& shapes,
                                          comm::Communicator& comm, const std::string& trace_file) {
  const double gpu_gib = device_peak_allocated_gib(device_);
  if (profiling_) {
    const compat::ProfiledRun run = compat::stop_op_profiler(trace_file);
    const OpProfile profile = summarize_op_profile(run.events, static_cast<int>(measured_steps_));
    VT_LOG(info) << format_op_profile(profile)
                 << (run.trace_error.empty() ? "  trace: " + trace_file : "  no trace: " + run.trace_error);
  }
  return summarize_benchmark(steps_, setup, shapes, gpu_gib, device_peak_reserved_gib(device_), resident_host_gib(),
                             comm);
}

}  // namespace vesseltune::perf
