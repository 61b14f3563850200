// bench_zero_step: the optimizer phase of a ZeRO step for a given number of trainable parameters (default 900M,
// Sa2VA-4B's LoRA r128 plus embeddings and heads), under `mpirun -np N` on GPUs (NCCL) or CPUs (MPI).
//
// The trainable parameters are the weights of a chain of d x d residual matmul layers, so that the backward
// pass does real work for the reduce-scatter to overlap with. Per step it measures:
//   backward, accumulation micro-step (no communication)    vs   backward, boundary micro-step (stage 2 hooks)
//   step(): reduce wait, norm, update (CPU AdamW, copies in and all-gathers issued meanwhile), gather wait
// and, once, each part on its own: reduce-scatter, copy out, CPU AdamW, copy in, all-gather.
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>

#include "../bench_support.h"
#include "vesseltune/comm/launch.h"
#include "vesseltune/core/torch_compat.h"
#include "vesseltune/optim/zero_optimizer.h"

using namespace vesseltune;
using Clock = std::chrono::steady_clock;

namespace {

using bench::median;
using bench::ms_since;

void synchronize(const at::Device& device) {
  if (device.is_cuda()) compat::cuda_synchronize(device.index());
}

// Slowest rank's value: a step is as slow as its slowest rank.
double max_over_ranks(double value, const comm::World& world) {
  MPI_Allreduce(MPI_IN_PLACE, &value, 1, MPI_DOUBLE, MPI_MAX, world.comm);
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_zero_step: ZeRO optimizer phase timing"};
  double params = 900e6;
  int width = 2048, rows = 512, steps = 5, warmup = 2, stage = 2;
  std::string offload = "cpu", backend = "auto", dtype = "bf16";
  app.add_option("--params", params, "trainable parameters in total");
  app.add_option("--width", width, "layer width d (each layer has d*d parameters)");
  app.add_option("--rows", rows, "activation rows per rank (backward work)");
  app.add_option("--steps", steps, "timed steps");
  app.add_option("--warmup", warmup, "untimed steps first");
  app.add_option("--stage", stage, "ZeRO stage");
  app.add_option("--offload", offload, "none | cpu");
  app.add_option("--backend", backend, "auto | mpi | nccl");
  app.add_option("--dtype", dtype, "bf16 | fp32");
  CLI11_PARSE(app, argc, argv);

  return comm::run_ranks(argc, argv, [&](const comm::World& world) {
    auto communicator = comm::make_communicator(world, comm::parse_backend(backend), std::chrono::seconds(600));
    const at::Device device = communicator->device();
    const auto scalar = dtype == "bf16" ? at::kBFloat16 : at::kFloat;
    const int layers = std::max<int>(1, static_cast<int>(params / (static_cast<double>(width) * width)));

    torch::manual_seed(0);
    std::vector<optim::NamedParameter> weights;
    for (int l = 0; l < layers; ++l) {
      auto w = (torch::randn({width, width}) * (0.5 / width)).to(scalar).to(device).requires_grad_(true);
      weights.push_back(optim::NamedParameter{"layers." + std::to_string(l) + ".weight", w, 0});
    }
    optim::ZeroConfig config;
    config.stage = stage;
    config.offload = optim::parse_offload_device(offload);
    config.reduce_bucket_numel = 50'000'000;
    optim::ZeroOptimizer optimizer(weights, {optim::ParamGroup{"decay", 0.0}}, config, *communicator);
    const auto footprint = optimizer.footprint();

    auto backward = [&](bool boundary) {
      optimizer.begin_micro_step(boundary);
      torch::Tensor x = torch::randn({rows, width}).to(scalar).to(device);
      for (const auto& w : weights) x = x + torch::matmul(x, w.tensor);
      x.to(at::kFloat).pow(2).mean().backward();
    };

    std::vector<double> local_ms, boundary_ms, reduce_ms, norm_ms, update_ms, gather_ms, step_ms;
    for (int s = 0; s < warmup + steps; ++s) {
      synchronize(device);
      auto start = Clock::now();
      backward(false);
      synchronize(device);
      const double local = ms_since(start);
      start = Clock::now();
      backward(true);
      synchronize(device);
      const double boundary = ms_since(start);
      start = Clock::now();
      const auto result = optimizer.step(1e-4);
      synchronize(device);
      const double total = ms_since(start);
      if (s < warmup) continue;
      local_ms.push_back(max_over_ranks(local, world));
      boundary_ms.push_back(max_over_ranks(boundary, world));
      reduce_ms.push_back(max_over_ranks(result.times.reduce_wait_ms, world));
      norm_ms.push_back(max_over_ranks(result.times.norm_ms, world));
      update_ms.push_back(max_over_ranks(result.times.update_ms, world));
      gather_ms.push_back(max_over_ranks(total - result.times.reduce_wait_ms - result.times.norm_ms - result.times.update_ms, world));
      step_ms.push_back(max_over_ranks(total, world));
    }

    // Each part alone, on buffers of the step's sizes.
    const int64_t shard = optimizer.layout().shard_numel();
    const int64_t flat = optimizer.layout().flat_numel();
    const auto model_options = at::TensorOptions().dtype(scalar).device(device);
    auto timed = [&](const std::function<void()>& body) {
      synchronize(device);
      MPI_Barrier(world.comm);
      const auto start = Clock::now();
      body();
      synchronize(device);
      return max_over_ranks(ms_since(start), world);
    };
    at::Tensor full = at::zeros({shard * world.size}, model_options);
    at::Tensor part = at::zeros({shard}, model_options);
    const double rs_alone = timed([&] { communicator->reduce_scatter(full, part, "bench reduce-scatter")->synchronize(); });
    const double ag_alone = timed([&] { communicator->all_gather(part, full, "bench all-gather")->synchronize(); });
    double out_alone = 0, in_alone = 0;
    at::Tensor host = communicator->empty_host(shard, scalar, true);
    if (device.is_cuda()) {
      out_alone = timed([&] { communicator->copy(host, part)->synchronize(); });
      in_alone = timed([&] { communicator->copy(part, host)->synchronize(); });
    }

    if (world.rank == 0) {
      std::printf("\nbench_zero_step: %d rank(s), backend %s, %s, %d layers of %dx%d = %.0fM trainable, stage %d, offload %s, "
                  "%d host thread(s)/rank\n",
                  world.size, communicator->backend(), dtype.c_str(), layers, width, width,
                  optimizer.layout().canonical_numel() / 1e6, stage, offload.c_str(), optimizer.host_threads());
      std::printf("per rank: shard %.0fM elements, state %.2f GiB device + %.2f GiB host; flat %.0fM\n", shard / 1e6,
                  footprint.device_bytes / 1073741824.0, footprint.host_bytes / 1073741824.0, flat / 1e6);
      std::printf("\n%-52s %10s\n", "median over steps (slowest rank)", "ms");
      std::printf("%-52s %10.1f\n", "backward, accumulation micro-step (no communication)", median(local_ms));
      std::printf("%-52s %10.1f\n", "backward, boundary micro-step (overlapped reduce)", median(boundary_ms));
      std::printf("%-52s %10.1f\n", "  reduction cost exposed inside the backward", median(boundary_ms) - median(local_ms));
      std::printf("%-52s %10.1f\n", "step: reduce-scatter + copy out still pending", median(reduce_ms));
      std::printf("%-52s %10.1f\n", "step: global norm", median(norm_ms));
      std::printf("%-52s %10.1f\n", "step: AdamW (copy in + all-gather overlapped)", median(update_ms));
      std::printf("%-52s %10.1f\n", "step: copy in + all-gather still pending", median(gather_ms));
      std::printf("%-52s %10.1f\n", "optimizer phase exposed (step + backward excess)",
                  median(step_ms) + median(boundary_ms) - median(local_ms));
      std::printf("\n%-52s %10s\n", "each part alone", "ms");
      std::printf("%-52s %10.1f\n", "reduce-scatter of the flat gradients", rs_alone);
      if (device.is_cuda()) std::printf("%-52s %10.1f\n", "copy out (device -> pinned host), one shard", out_alone);
      std::printf("%-52s %10.1f\n", "CPU/device AdamW, one shard (from the step)", median(update_ms));
      if (device.is_cuda()) std::printf("%-52s %10.1f\n", "copy in (pinned host -> device), one shard", in_alone);
      std::printf("%-52s %10.1f\n", "all-gather of the parameters", ag_alone);
    }
    return 0;
  });
}
