// vesseltune-zero-demo: the distributed runtime on its own. Every rank trains the same small network on its
// part of each batch with ZeRO (stage, offload, accumulation from the command line); rank 0 logs the loss,
// averaged over ranks. Runs under `mpirun -np N` on CPUs (MPI) or GPUs (NCCL).
#include <CLI/CLI.hpp>
#include <torch/torch.h>

#include <cmath>

#include "vesseltune/comm/launch.h"
#include "vesseltune/core/log.h"
#include "vesseltune/optim/deepspeed_config.h"
#include "vesseltune/optim/zero_optimizer.h"

using namespace vesseltune;

int main(int argc, char** argv) {
  CLI::App app{"vesseltune-zero-demo: ZeRO data parallelism on a small regression network"};
  int steps = 200, accumulation = 2, micro_batch = 16, log_interval = 20;
  double lr = 3e-3;
  std::string deepspeed = "", backend = "auto";
  optim::ZeroConfig zero;
  std::string offload = "cpu";
  app.add_option("--steps", steps, "optimizer steps")->check(CLI::PositiveNumber);
  app.add_option("--accumulation", accumulation, "micro-steps per optimizer step")->check(CLI::PositiveNumber);
  app.add_option("--micro-batch", micro_batch, "samples per rank and micro-step")->check(CLI::PositiveNumber);
  app.add_option("--lr", lr, "learning rate");
  app.add_option("--stage", zero.stage, "ZeRO stage (0, 1, 2)");
  app.add_option("--offload", offload, "optimizer offload: none | cpu");
  app.add_option("--deepspeed", deepspeed, "a DeepSpeed JSON config (overrides --stage/--offload/--accumulation)");
  app.add_option("--backend", backend, "auto | mpi | nccl");
  app.add_option("--log-interval", log_interval, "steps between log lines");
  CLI11_PARSE(app, argc, argv);

  return comm::run_ranks(argc, argv, [&](const comm::World& world) {
    zero.offload = optim::parse_offload_device(offload);
    zero.reduce_bucket_numel = 20'000;
    if (!deepspeed.empty()) {
      optim::TrainingDefaults defaults;
      defaults.gradient_accumulation_steps = accumulation;
      defaults.micro_batch_per_gpu = micro_batch;
      defaults.world_size = world.size;
      defaults.lr = lr;
      const auto settings = optim::load_deepspeed_config(deepspeed, defaults);
      for (const auto& note : settings.notes) VT_LOG(info) << note;
      zero = settings.zero;
      accumulation = settings.gradient_accumulation_steps;
      micro_batch = settings.micro_batch_per_gpu;
      lr = settings.lr;
    }
    auto communicator = comm::make_communicator(world, comm::parse_backend(backend), std::chrono::seconds(300));
    const at::Device device = communicator->device();
    for (int r = 0; r < world.size; ++r) VT_LOG(info) << "world: " << world.describe(r);
    VT_LOG(info) << "backend " << communicator->backend() << ", device " << device;
    VT_LOG(info) << "effective batch = " << world.size << " ranks x " << micro_batch << " x " << accumulation
                 << " accumulation = " << world.size * micro_batch * accumulation;

    torch::manual_seed(0);
    torch::nn::Sequential net(torch::nn::Linear(32, 256), torch::nn::Tanh(), torch::nn::Linear(256, 256),
                              torch::nn::Tanh(), torch::nn::Linear(256, 1));
    net->to(device);
    // The target sin(x . w) with |w| ~ 1, so that it is smooth enough to learn in a few hundred steps.
    const torch::Tensor teacher = (torch::randn({32, 1}) / std::sqrt(32.0)).to(device);

    comm::Fingerprint identity;
    identity.add("demo", "steps " + std::to_string(steps) + ", lr " + std::to_string(lr));
    optim::ZeroOptimizer optimizer(optim::trainable_parameters(*net), optim::default_param_groups(zero), zero,
                                   *communicator, identity);
    torch::manual_seed(1 + world.rank);  // each rank draws its own samples
    double first_loss = 0, loss_sum = 0;
    for (int step = 1; step <= steps; ++step) {
      double step_loss = 0;
      for (int micro = 0; micro < accumulation; ++micro) {
        optimizer.begin_micro_step(micro == accumulation - 1);
        const auto x = torch::randn({micro_batch, 32}).to(device);
        const auto y = torch::sin(x.matmul(teacher));
        const auto loss = torch::mse_loss(net->forward(x), y) / accumulation;
        loss.backward();
        step_loss += loss.item<double>();
      }
      const auto result = optimizer.step(lr);
      MPI_Allreduce(MPI_IN_PLACE, &step_loss, 1, MPI_DOUBLE, MPI_SUM, world.comm);
      step_loss /= world.size;
      if (step == 1) first_loss = step_loss;
      loss_sum += step_loss;
      if (step % log_interval == 0 || step == steps) {
        VT_LOG(info) << "iter: " << step << ", loss: " << loss_sum / std::min(step, log_interval)
                     << ", grad_norm: " << result.grad_norm << ", optimizer step: " << result.times.total_ms() << " ms";
        loss_sum = 0;
      }
    }
    VT_LOG(info) << "done: first loss " << first_loss << "; " << optimizer.step_count() << " steps, "
                 << optimizer.skipped_steps() << " skipped";
    return 0;
  });
}
