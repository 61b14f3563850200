#include "vesseltune/perf/benchmark_report.h"

#include <mpi.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <iomanip>
#include <sstream>

#include "vesseltune/core/check.h"
#include "vesseltune/perf/model_flops.h"

namespace vesseltune::perf {
namespace {

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

// The phases in report order: name, accessor.
struct Phase {
  const char* name;
  double (*get)(const StepPhases&);
};
const Phase kPhases[] = {
    {"data wait", [](const StepPhases& s) { return s.data_ms; }},
    {"forward", [](const StepPhases& s) { return s.forward_ms; }},
    {"backward (overlaps reduce-scatter, copy out)", [](const StepPhases& s) { return s.backward_ms; }},
    {"reduce-scatter + copy out wait", [](const StepPhases& s) { return s.reduce_wait_ms; }},
    {"optimizer (norm + AdamW)", [](const StepPhases& s) { return s.optimizer_ms; }},
    {"copy in + all-gather wait", [](const StepPhases& s) { return s.gather_wait_ms; }},
    {"other", [](const StepPhases& s) {
       return s.step_ms - s.data_ms - s.forward_ms - s.backward_ms - s.reduce_wait_ms - s.optimizer_ms - s.gather_wait_ms;
     }},
    {"step", [](const StepPhases& s) { return s.step_ms; }},
    {"transfer: reduce-scatter", [](const StepPhases& s) { return s.transfers.reduce_ms; }},
    {"transfer: copy out", [](const StepPhases& s) { return s.transfers.copy_out_ms; }},
    {"transfer: copy in", [](const StepPhases& s) { return s.transfers.copy_in_ms; }},
    {"transfer: all-gather", [](const StepPhases& s) { return s.transfers.gather_ms; }},
};
constexpr int kPhaseCount = sizeof(kPhases) / sizeof(kPhases[0]);
constexpr int kStep = 7;  // index of "step"

std::vector<double> gather_to_all(double value, comm::Communicator& comm, const std::string& what) {
  return comm.all_gather_host(std::vector<double>{value}, "benchmark report: " + what);
}

std::string list(const std::vector<double>& values) {
  std::ostringstream out;
  out << std::fixed << std::setprecision(2);
  for (size_t i = 0; i < values.size(); ++i) out << (i ? " " : "") << values[i];
  return out.str();
}

// Everything the summary reports, the same on every rank.
struct Figures {
  std::vector<double> phase_ms = std::vector<double>(kPhaseCount);  // the slowest rank's median per phase
  std::vector<double> counts = std::vector<double>(4);  // samples, tiles, tokens, labelled tokens: all ranks, steps
  size_t steps = 0;
  double samples_per_s = 0, tokens_per_s = 0, tflops_per_gpu = 0, mfu = 0;
  double optimizer_exposed_ms = 0, rank_wait_ms = 0;
  SampleFlops flops;
  std::vector<double> gpu, reserved, host;  // GiB per rank

  double per_sample(int count) const { return counts[count] / counts[0]; }
};

void slowest_rank_medians(const std::vector<StepPhases>& steps, comm::Communicator& comm, Figures& f) {
  for (int p = 0; p < kPhaseCount; ++p) {
    std::vector<double> values;
    for (const StepPhases& s : steps) values.push_back(kPhases[p].get(s));
    f.phase_ms[p] = median(values);
  }
  comm.all_reduce_host(f.phase_ms, comm::Communicator::Reduction::max, "benchmark report: phases");
}

// Work per step over all ranks, from this rank's counts (every rank sees equal micro-batches).
void work_done(const std::vector<StepPhases>& steps, comm::Communicator& comm, Figures& f) {
  for (double& count : f.counts) count = 0;
  for (const StepPhases& s : steps) {
    f.counts[0] += static_cast<double>(s.samples);
    f.counts[1] += static_cast<double>(s.tiles);
    f.counts[2] += static_cast<double>(s.tokens);
    f.counts[3] += static_cast<double>(s.labelled_tokens);
  }
  comm.all_reduce_host(f.counts, comm::Communicator::Reduction::sum, "benchmark report: work done");
}

// The exposed optimizer phase of one step is that of the rank on its critical path: every rank waits for the
// others at the reduce-scatter and at the norm's all-reduce, so a rank that finished its backward early spends
// the difference waiting there. Per step, the rank that waited least (the minimum over ranks of reduce wait +
// optimizer + gather wait) is the critical one; the maximum minus it is time spent waiting for slower ranks.
// (Summing the per-phase maxima would add up waits of different ranks.)
void critical_path(const std::vector<StepPhases>& steps, comm::Communicator& comm, Figures& f) {
  const int n = static_cast<int>(steps.size());
  std::vector<double> exposed(steps.size());
  for (int i = 0; i < n; ++i) exposed[i] = steps[i].reduce_wait_ms + steps[i].optimizer_ms + steps[i].gather_wait_ms;
  const std::vector<double> all = comm.all_gather_host(exposed, "benchmark report: critical path");
  std::vector<double> critical(steps.size()), skew(steps.size());
  for (int i = 0; i < n; ++i) {
    double lo = all[static_cast<size_t>(i)], hi = lo;
    for (int r = 1; r < comm.size(); ++r) {
      lo = std::min(lo, all[static_cast<size_t>(r) * n + i]);
      hi = std::max(hi, all[static_cast<size_t>(r) * n + i]);
    }
    critical[i] = lo;
    skew[i] = hi - lo;
  }
  f.optimizer_exposed_ms = median(critical);
  f.rank_wait_ms = median(skew);
}

// Throughput, and FLOPs of the average sample (every sample has the same shape in a benchmark: one image size).
void throughput(const BenchmarkSetup& setup, const setup::ModelShapes& shapes, const comm::World& world, Figures& f) {
  const double step_s = f.phase_ms[kStep] / 1000.0;
  f.samples_per_s = f.counts[0] / static_cast<double>(f.steps) / step_s;
  f.tokens_per_s = f.counts[2] / static_cast<double>(f.steps) / step_s;
  f.flops = training_flops_per_sample(shapes, static_cast<int64_t>(std::llround(f.per_sample(1))),
                                      static_cast<int64_t>(std::llround(f.per_sample(2))),
                                      static_cast<int64_t>(std::llround(f.per_sample(3))));
  f.tflops_per_gpu = f.flops.total() * f.samples_per_s / world.size / 1e12;
  f.mfu = setup.peak_tflops > 0 ? f.tflops_per_gpu / setup.peak_tflops : 0.0;
}

std::string table(const Figures& f, const BenchmarkSetup& setup, const comm::World& world) {
  std::ostringstream t;
  t << std::fixed << std::setprecision(1);
  t << "benchmark: " << setup.model << ", " << world.size << " rank(s) x micro-batch " << setup.micro_batch
    << " x accumulation " << setup.accumulation << ", offload " << setup.offload << "; " << f.steps
    << " measured steps after " << setup.warmup_steps << " warm-up; medians, slowest rank\n";
  t << "  " << std::left << std::setw(46) << "phase" << std::right << std::setw(10) << "ms/step" << std::setw(8)
    << "share\n";
  for (int p = 0; p < kPhaseCount; ++p) {
    t << "  " << std::left << std::setw(46) << kPhases[p].name << std::right << std::setw(10) << f.phase_ms[p];
    if (p < kStep) t << std::setw(7) << 100.0 * f.phase_ms[p] / f.phase_ms[kStep] << "%";
    t << "\n";
  }
  t << "  exposed optimizer phase (critical-path rank): " << f.optimizer_exposed_ms << " ms = "
    << 100.0 * f.optimizer_exposed_ms / f.phase_ms[kStep] << "% of the step; waiting for slower ranks: up to "
    << f.rank_wait_ms << " ms more\n";
  t << std::setprecision(2) << "  samples/s: " << f.samples_per_s << " (" << f.samples_per_s / world.size
    << " per rank), tokens/s: " << f.tokens_per_s << ", tokens/sample: " << f.per_sample(2)
    << ", tiles/sample: " << f.per_sample(1) << "\n";
  const SampleFlops& flops = f.flops;
  t << std::setprecision(3) << "  model TFLOP per sample: " << flops.total() / 1e12 << " (vision " << flops.vision / 1e12
    << ", mlp1 " << flops.projector / 1e12 << ", LLM " << flops.llm / 1e12 << ", SAM2 encoder "
    << flops.sam2_encoder / 1e12 << ", SAM2 decoder " << flops.sam2_decoder / 1e12 << ")\n";
  t << std::setprecision(1) << "  model TFLOP/s per rank: " << f.tflops_per_gpu;
  if (setup.peak_tflops > 0) t << ", MFU " << 100.0 * f.mfu << "% of " << setup.peak_tflops << " TFLOP/s";
  t << "\n  GPU peak GiB per rank: " << list(f.gpu) << " allocated, " << list(f.reserved)
    << " reserved (with CUDA graph pools and cached blocks); host GiB per rank: " << list(f.host);
  return t.str();
}

std::string json_line(const Figures& f, const BenchmarkSetup& setup, const comm::World& world) {
  nlohmann::json j = {{"model", setup.model},
                      {"ranks", world.size},
                      {"micro_batch", setup.micro_batch},
                      {"accumulation", setup.accumulation},
                      {"offload", setup.offload},
                      {"steps", f.steps},
                      {"samples_per_s", f.samples_per_s},
                      {"samples_per_s_per_rank", f.samples_per_s / world.size},
                      {"tokens_per_s", f.tokens_per_s},
                      {"tokens_per_sample", f.per_sample(2)},
                      {"optimizer_exposed_ms", f.optimizer_exposed_ms},
                      {"optimizer_exposed_share", f.optimizer_exposed_ms / f.phase_ms[kStep]},
                      {"rank_wait_ms", f.rank_wait_ms},
                      {"model_tflop_per_sample", f.flops.total() / 1e12},
                      {"tflops_per_rank", f.tflops_per_gpu},
                      {"mfu", f.mfu},
                      {"gpu_peak_gib", f.gpu},
                      {"gpu_reserved_gib", f.reserved},
                      {"host_gib", f.host}};
  for (int p = 0; p < kPhaseCount; ++p) j["ms"][kPhases[p].name] = f.phase_ms[p];
  return j.dump();
}

}  // namespace

BenchmarkResult summarize_benchmark(const std::vector<StepPhases>& steps, const BenchmarkSetup& setup,
                                    const setup::ModelShapes& shapes, double gpu_peak_gib, double gpu_reserved_gib,
                                    double host_gib, comm::Communicator& comm) {
  const comm::World& world = comm.world();
  VT_CHECK(!steps.empty(), "benchmark: no measured steps");
  Figures f;
  f.steps = steps.size();
  slowest_rank_medians(steps, comm, f);
  work_done(steps, comm, f);
  throughput(setup, shapes, world, f);
  critical_path(steps, comm, f);
  f.gpu = gather_to_all(gpu_peak_gib, comm, "GPU memory");
  f.host = gather_to_all(host_gib, comm, "host memory");
  f.reserved = gather_to_all(gpu_reserved_gib, comm, "GPU reserved");
  return {table(f, setup, world), json_line(f, setup, world)};
}

}  // namespace vesseltune::perf
