#pragma once
// The training job (vesseltune-train), on every rank of a world:
//
//   config ─► communicator (NCCL on GPUs, MPI on CPUs) ─► Sa2VA (base weights, LoRA, trainable set)
//          ─► loaders (this rank's part of the train split; the val split) ─► ZeRO optimizer ─► resume
//   per optimizer step:  reseed(seed, step, rank)
//                        accumulation × [next batch ─► encode ─► forward ─► (total / accumulation).backward()]
//                        optimizer.step(lr of the schedule)  ─►  one all-reduce: losses + stop request
//                        log / metrics row / validation / checkpoint, as due
//   end (or SIGTERM/SIGUSR1): checkpoint, final validation, paths printed.
//
// Losses: each micro-step's loss is divided by the accumulation count and ZeRO averages gradients over ranks,
// so a step's gradient is that of the mean loss over world × accumulation micro-batches. The mask losses are
// means over masks (one per sample), hence exactly one large batch's; llm_loss is each micro-batch's mean over
// its answer tokens, as in Sa2VA's xtuner runs.

#include <cstdint>
#include <filesystem>
#include <string>

#include "vesseltune/comm/world.h"
#include "vesseltune/data/loader.h"
#include "vesseltune/perf/memory_plan.h"
#include "vesseltune/setup/model_setup.h"
#include "vesseltune/setup/train_config.h"

namespace vesseltune::train {

struct RunOptions {
  std::string resume;       // "" (start fresh), "auto" (newest checkpoint in the work dir, if any) or a checkpoint file
  int64_t stop_at_step = 0;  // > 0: end at this step as a stop signal would (save, return); tests and benchmarks
  bool allow_restart = false;  // with "auto": when every checkpoint is damaged, set them aside and start at step 0
  // Benchmark mode (> 0): benchmark_warmup + benchmark_steps steps with every phase timed (the optimizer's phases
  // synchronise the device), no validation, no checkpoints; the summary (benchmark_report.h) is logged.
  int64_t benchmark_steps = 0;
  int64_t benchmark_warmup = 3;
  double peak_tflops = 0;  // the card's measured bf16 matmul rate, for MFU
  // Benchmark mode: rank 0 profiles its measured steps (LibTorch's profiler), logs the summary (op_profile.h)
  // and writes the Chrome trace to WORK_DIR/profile_rank0.json where LibTorch has Kineto (the GPU machine's;
  // Debian's 1.13 records host operators only). The profiler slows the host, so the phase figures of a profiled
  // run are not the benchmark's.
  bool profile = false;
};

struct TrainingSummary {
  int64_t first_step = 0;        // steps done when this run began (> 0 after a resume)
  int64_t last_step = 0;         // steps done when it ended
  bool stopped = false;          // ended early by SIGTERM / SIGUSR1 (on any rank), after saving
  double initial_dice = -1;      // validation Dice in the FOV before training (fresh runs), -1 if not run
  double final_dice = -1;        // at the end
  std::filesystem::path last_checkpoint;
  std::filesystem::path metrics_file;
  std::string benchmark_json;   // benchmark mode: the summary as one JSON line
};

// What the trainer feeds the model: this rank's part of the train split (shuffled, repeated, augmented, equal on
// every rank) and of the val split (every image once, as packed, with full-resolution masks).
data::LoaderOptions train_loader_options(const setup::TrainConfig& config, const setup::ModelShapes& shapes, const comm::World& world);
data::LoaderOptions val_loader_options(const setup::TrainConfig& config, const setup::ModelShapes& shapes, const comm::World& world);

// Every generator (CPU and CUDA) from (seed, step, rank), before each step and validation: dropout and the loss's
// point sampling of step S are the same whether or not the run was interrupted before S.
void seed_step(uint64_t seed, int64_t step, int rank);

// Collective over WORLD. Throws vesseltune::Error with context on bad input; the caller (comm::run_ranks) turns
// that into a clean end of every rank.
TrainingSummary run_training(const setup::TrainConfig& config, const RunOptions& options, const comm::World& world);

}  // namespace vesseltune::train
