#pragma once
// Benchmark mode of vesseltune-train (`--benchmark STEPS`): each measured step's phases, and the summary the
// benchmark prints — medians over the measured steps on each rank, then the slowest rank's median per phase,
// throughput, model FLOPs utilisation and memory per rank. Phases of one step:
//   data wait      host: waiting for the loader's next batch
//   forward        device (CUDA events) or host: inputs to the device and normalised, the model's forward
//   backward       the backward pass, which overlaps the reduce-scatter and copy out of finished buckets
//   reduce wait    after the backward pass, waiting for the last reductions and copies out   } ZeroOptimizer::step,
//   optimizer      gradient norm + AdamW on this rank's shard (host threads with offload)    } the exposed
//   gather wait    waiting for the last copies in and all-gathers                             } optimizer phase
//   other          the rest of the step: host work between phases, the step statistics' all-reduce
// Transfers are also timed on their own streams (optim::TransferTimes), overlapped or not. The exposed optimizer
// phase of a step is the three marked phases of the rank that waited least in it (the critical path); what
// other ranks waited more is reported apart, as waiting for slower ranks.
#include <cstdint>
#include <string>
#include <vector>
#include "vesseltune/comm/communicator.h"
#include "vesseltune/optim/zero_optimizer.h"
#include "vesseltune/setup/model_setup.h"

namespace vesseltune::perf {

struct StepPhases {
  double data_ms = 0, forward_ms = 0, backward_ms = 0;
  double reduce_wait_ms = 0, optimizer_ms = 0, gather_wait_ms = 0;
  double step_ms = 0;
  optim::TransferTimes transfers;
  int64_t samples = 0, tiles = 0, tokens = 0, labelled_tokens = 0;  // this rank's
};

struct BenchmarkSetup {
  std::string model;    // preset or config.json
  std::string offload;  // zero.offload_optimizer
  int64_t micro_batch = 1, accumulation = 1, warmup_steps = 0;
  double peak_tflops = 0;  // the card's measured bf16 matmul rate; 0: MFU not reported
};

struct BenchmarkResult {
  std::string table;  // for the log
  std::string json;   // one line, for scripts
};

// Collective over COMM's ranks (host collectives). STEPS: this rank's measured steps. Returns the same on every rank.
BenchmarkResult summarize_benchmark(const std::vector<StepPhases>& steps, const BenchmarkSetup& setup,
                                   const setup::ModelShapes& shapes, double gpu_peak_gib, double gpu_reserved_gib,
                                   double host_gib, comm::Communicator& comm);

}  // namespace vesseltune::perf
