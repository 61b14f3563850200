// vesseltune-train: fine-tunes Sa2VA with LoRA on packed vessel data, on every rank of `mpirun` / `srun`
// (GPUs with NCCL, CPUs with MPI). `--plan` prints the per-GPU memory plan of a config instead, without MPI.
#include <CLI/CLI.hpp>
#include <malloc.h>

#include <cstdio>
#include <iostream>

#include "vesseltune/comm/launch.h"
#include "vesseltune/core/log.h"
#include "vesseltune/perf/memory_plan.h"
#include "vesseltune/train/trainer.h"

using namespace vesseltune;

namespace {

// The plan for the config at WORLD_SIZE GPUs, and with GPU_MEM_GIB > 0 whether it fits and what to change.
int print_plan(const setup::TrainConfig& loaded, int world_size, double gpu_mem_gib) {
  const perf::PlanInputs in = perf::memory_plan_inputs(loaded.with_deepspeed(world_size), world_size);
  const perf::MemoryPlan plan = perf::plan_memory(in);
  std::cout << perf::format_plan(plan, in);
  if (gpu_mem_gib > 0) {
    const perf::FitAdvice advice = perf::advise(in, gpu_mem_gib);
    std::cout << (advice.fits ? "fits" : "does NOT fit") << " a " << gpu_mem_gib << " GiB GPU (keeping "
              << perf::safety_margin_gib(gpu_mem_gib) << " GiB free)\n";
    for (const auto& suggestion : advice.suggestions) std::cout << "  change: " << suggestion << "\n";
    std::cout << "optimizer offload that fits with the least offload: " << perf::choose_offload(in, gpu_mem_gib).yaml();
    if (!loaded.train.deepspeed.empty()) {
      std::cout << " (train.deepspeed decides these: set zero_optimization.offload_optimizer in " << loaded.train.deepspeed
                << ")";
    }
    std::cout << "\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // glibc gives every thread that allocates its own arena (loader, optimizer and autograd threads here), and
  // freed tensor memory stays in them: the tiny demo's resident memory grew 2.3 MB per step with the default
  // (8 per core) and stayed flat with one arena. Two keep contention low.
  mallopt(M_ARENA_MAX, 2);
  CLI::App app{"vesseltune-train: LoRA fine-tuning of Sa2VA on vessel images (run under mpirun or srun)"};
  std::string config_file, data_dir, work_dir;
  std::vector<std::string> overrides;
  bool plan = false, print_work_dir = false;
  int plan_world_size = 1;
  double gpu_mem_gib = 0;
  train::RunOptions run;
  app.add_option("--config", config_file, "training config (YAML), e.g. configs/tiny_vessel.yaml")->required();
  app.add_option("--data", data_dir, "packed data folder (overrides data.path)");
  app.add_option("--work-dir", work_dir, "where checkpoints, metrics and logs go (overrides runtime.work_dir)");
  CLI::Option* resume =
      app.add_option("--resume", run.resume, "auto (newest checkpoint in the work dir, if any) or a checkpoint file");
  app.add_flag("--allow-restart", run.allow_restart,
               "with --resume auto: when every checkpoint is damaged, set them aside (*.damaged) and start at step 0")
      ->needs(resume);
  app.add_option("--set", overrides, "override a config key: --set train.lr=2e-4 (repeatable)");
  app.add_flag("--plan", plan, "print the per-GPU memory plan and exit (no MPI needed)");
  app.add_flag("--print-work-dir", print_work_dir, "print the resolved runtime.work_dir and exit (job scripts)");
  app.add_option("--world-size", plan_world_size, "GPUs for --plan")->check(CLI::PositiveNumber);
  app.add_option("--gpu-mem", gpu_mem_gib, "GiB per GPU for --plan: says whether it fits and what to change");
  CLI::Option* benchmark = app.add_option("--benchmark", run.benchmark_steps,
                 "benchmark mode: time every phase of this many steps after the warm-up, print the summary and a "
                 "BENCH_RESULT JSON line; no validation, no checkpoints")
      ->check(CLI::PositiveNumber);
  app.add_option("--warmup", run.benchmark_warmup, "benchmark mode: steps before the measured ones")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--peak-tflops", run.peak_tflops, "benchmark mode: the card's measured bf16 matmul TFLOP/s, for MFU");
  app.add_flag("--profile", run.profile,
               "benchmark mode: profile rank 0's measured steps (operators, kernels, GPU busy time, waits) and "
               "write WORK_DIR/profile_rank0.json (Chrome trace, where LibTorch has Kineto); slows the host, so time "
               "without it")
      ->needs(benchmark);
  CLI11_PARSE(app, argc, argv);
  if (!data_dir.empty()) overrides.push_back("data.path=" + data_dir);
  if (!work_dir.empty()) overrides.push_back("runtime.work_dir=" + work_dir);

  if (plan || print_work_dir) {
    try {
      const setup::TrainConfig config = setup::TrainConfig::load(config_file, overrides);
      if (print_work_dir) {
        std::cout << config.runtime.work_dir << "\n";
        return 0;
      }
      return print_plan(config, plan_world_size, gpu_mem_gib);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "vesseltune-train: %s\n", e.what());
      return 1;
    }
  }
  return comm::run_ranks(argc, argv, [&](const comm::World& world) {
    const setup::TrainConfig config = setup::TrainConfig::load(config_file, overrides);
    const train::TrainingSummary summary = train::run_training(config, run, world);
    if (!summary.benchmark_json.empty() && world.rank == 0) std::cout << "BENCH_RESULT " << summary.benchmark_json << std::endl;
    return 0;
  });
}
