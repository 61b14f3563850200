// ZeRO on N ranks against single-process torch::optim::AdamW on the whole batch.
//
// Every rank builds the same small network from the same seed; the reference takes full-batch steps with
// torch::optim::AdamW (and clip_grad_norm_), the ZeRO run splits the batch across ranks and into G
// accumulation micro-steps. Sizes are chosen so that buckets need padding at world 2 and 3. The same binary
// runs on the GPU machine, where the communicator is NCCL and tensors live on the rank's GPU.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "vesseltune/comm/launch.h"
#include "vesseltune/core/check.h"
#include "vesseltune/optim/zero_optimizer.h"

using namespace vesseltune;
using namespace vesseltune::optim;

namespace {

constexpr int kBatch = 12;  // divisible by world 1..3 times accumulation 1..2
constexpr double kLr = 1e-2;
constexpr double kWeightDecay = 0.1;
constexpr int64_t kBucket = 40;

struct TinyNetImpl : torch::nn::Module {
  TinyNetImpl() {
    fc1 = register_module("fc1", torch::nn::Linear(7, 13));
    norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({13})));
    fc2 = register_module("fc2", torch::nn::Linear(13, 5));
    scale = register_parameter("scale", torch::full({5}, 1.5));
  }
  torch::Tensor forward(const torch::Tensor& x) { return fc2(torch::tanh(norm(fc1(x)))) * scale; }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  torch::Tensor scale;
};
TORCH_MODULE(TinyNet);

struct ZeroSetup {
  int stage;
  OffloadDevice offload;
  int accumulation;
  double clip;
};

std::string name_of(const testing::TestParamInfo<ZeroSetup>& info) {
  const auto& s = info.param;
  return "stage" + std::to_string(s.stage) + (s.offload == OffloadDevice::cpu ? "_offload" : "_device") + "_accum" +
         std::to_string(s.accumulation) + (s.clip > 0 ? "_clip" : "_noclip");
}

std::unique_ptr<comm::Communicator> make_comm(const comm::World& world) {
  return comm::make_communicator(world, comm::Backend::automatic, std::chrono::seconds(120));
}

TinyNet make_net(uint64_t seed, const at::Device& device) {
  torch::manual_seed(seed);
  TinyNet net;
  net->to(device);
  return net;
}

struct Data {
  torch::Tensor x, y;
};
Data batch(int step, const at::Device& device) {
  torch::manual_seed(1000 + step);
  return Data{torch::randn({kBatch, 7}).to(device), torch::randn({kBatch, 5}).to(device)};
}

ZeroConfig zero_config(const ZeroSetup& setup) {
  ZeroConfig config;
  config.stage = setup.stage;
  config.offload = setup.offload;
  config.gradient_clipping = setup.clip;
  config.weight_decay = kWeightDecay;
  config.reduce_bucket_numel = kBucket;
  config.optimizer_threads = 2;
  return config;
}

// One optimizer step of the ZeRO run: this rank's rows of the batch, in `accumulation` micro-steps.
StepResult zero_step(TinyNet& net, ZeroOptimizer& optimizer, const comm::Communicator& comm, int step, int accumulation,
                     double poison = 1.0) {
  const Data data = batch(step, comm.device());
  const int rows = kBatch / comm.size();
  const int micro_rows = rows / accumulation;
  for (int micro = 0; micro < accumulation; ++micro) {
    optimizer.begin_micro_step(micro == accumulation - 1);
    const int64_t first = comm.rank() * rows + micro * micro_rows;
    const auto x = data.x.narrow(0, first, micro_rows), y = data.y.narrow(0, first, micro_rows);
    const auto loss = torch::mse_loss(net->forward(x), y) / accumulation * poison;
    loss.backward();
  }
  return optimizer.step(kLr);
}

// The reference: torch's own AdamW on the full batch, with the same parameter groups.
struct Reference {
  TinyNet net;
  std::unique_ptr<torch::optim::AdamW> optimizer;
  std::vector<double> norms;
  double clip;

  Reference(const at::Device& device, double clip_norm) : net(make_net(1, device)), clip(clip_norm) {
    std::vector<torch::Tensor> decay, no_decay;
    for (auto& p : net->parameters()) (p.dim() <= 1 ? no_decay : decay).push_back(p);
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                   torch::optim::AdamWOptions(kLr).weight_decay(kWeightDecay)));
    groups.emplace_back(no_decay,
                        std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(kLr).weight_decay(0)));
    optimizer = std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(kLr));
  }
  void step(int step_index) {
    const Data data = batch(step_index, net->parameters()[0].device());
    optimizer->zero_grad();
    torch::mse_loss(net->forward(data.x), data.y).backward();
    // max_norm infinity measures without clipping
    norms.push_back(torch::nn::utils::clip_grad_norm_(net->parameters(), clip > 0 ? clip : 1e30));
    optimizer->step();
  }
};

void expect_close(TinyNet& actual, TinyNet& expected, double relative, const std::string& what) {
  const auto a = actual->named_parameters(), e = expected->named_parameters();
  for (const auto& item : e) {
    const auto& want = item.value();
    const auto& got = a[item.key()];
    const double scale = want.abs().max().item<double>();
    const double error = (got - want).abs().max().item<double>();
    EXPECT_LE(error, relative * scale) << what << ": " << item.key() << " differs by " << error << " (scale " << scale << ")";
  }
}

class ZeroEquivalence : public testing::TestWithParam<ZeroSetup> {};

TEST_P(ZeroEquivalence, TwentyStepsEqualSingleProcessAdamW) {
  const ZeroSetup setup = GetParam();
  const auto world = comm::World::of(MPI_COMM_WORLD);
  auto comm = make_comm(world);
  const at::Device device = comm->device();

  Reference reference(device, setup.clip);
  TinyNet net = make_net(1, device);
  ZeroOptimizer optimizer(trainable_parameters(*net), default_param_groups(zero_config(setup)), zero_config(setup), *comm);
  for (int step = 0; step < 20; ++step) {
    reference.step(step);
    const auto result = zero_step(net, optimizer, *comm, step, setup.accumulation);
    ASSERT_TRUE(result.applied);
    // The norm is the global one (of the averaged gradient), not this rank's.
    EXPECT_NEAR(result.grad_norm, reference.norms.back(), 1e-5 * reference.norms.back()) << "step " << step;
    if (setup.clip > 0 && step == 0) {
      EXPECT_LT(result.clip_coef, 1.0) << "clipping should be active";
    }
  }
  EXPECT_EQ(optimizer.step_count(), 20);
  expect_close(net, reference.net, 1e-6, "after 20 steps");
}

INSTANTIATE_TEST_SUITE_P(
    Stages, ZeroEquivalence,
    testing::Values(ZeroSetup{0, OffloadDevice::none, 1, 0}, ZeroSetup{0, OffloadDevice::cpu, 2, 0.05},
                    ZeroSetup{1, OffloadDevice::none, 2, 0}, ZeroSetup{1, OffloadDevice::cpu, 1, 0.05},
                    ZeroSetup{2, OffloadDevice::none, 1, 0.05}, ZeroSetup{2, OffloadDevice::none, 2, 0},
                    ZeroSetup{2, OffloadDevice::cpu, 1, 0}, ZeroSetup{2, OffloadDevice::cpu, 2, 0.05}),
    name_of);

TEST(ZeroOptimizer, NonFiniteGradientOnOneRankSkipsTheStepOnAllRanks) {
  const auto world = comm::World::of(MPI_COMM_WORLD);
  auto comm = make_comm(world);
  for (OffloadDevice offload : {OffloadDevice::none, OffloadDevice::cpu}) {
    const ZeroSetup setup{2, offload, 1, 1.0};
    TinyNet net = make_net(1, comm->device());
    ZeroOptimizer optimizer(trainable_parameters(*net), default_param_groups(zero_config(setup)), zero_config(setup), *comm);
    zero_step(net, optimizer, *comm, 0, 1);
    std::vector<torch::Tensor> before;
    for (const auto& p : net->parameters()) before.push_back(p.detach().clone());

    const double poison = comm->rank() == comm->size() - 1 ? std::nan("") : 1.0;
    const auto result = zero_step(net, optimizer, *comm, 1, 1, poison);
    EXPECT_FALSE(result.applied);
    EXPECT_FALSE(std::isfinite(result.grad_norm));
    EXPECT_EQ(optimizer.step_count(), 1);
    EXPECT_EQ(optimizer.skipped_steps(), 1);
    const auto after = net->parameters();
    for (size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(torch::equal(before[i], after[i]));

    // The gradients were cleared: the next step is a normal one.
    EXPECT_TRUE(zero_step(net, optimizer, *comm, 2, 1).applied);
    for (const auto& p : net->parameters()) EXPECT_TRUE(torch::isfinite(p).all().item<bool>());
  }
}

// Full canonical state on every rank, assembled from each rank's spans (test helper; the checkpoint writer
// writes the spans into its file instead).
struct CanonicalState {
  torch::Tensor master, exp_avg, exp_avg_sq;
  int64_t step;
};

CanonicalState gather_state(ZeroOptimizer& optimizer, const comm::World& world) {
  const int64_t n = optimizer.layout().canonical_numel();
  CanonicalState state{torch::zeros({n}), torch::zeros({n}), torch::zeros({n}), optimizer.step_count()};
  if (!optimizer.state_replicated() || world.rank == 0) {
    for (const auto& span : optimizer.state_spans()) {
      state.master.narrow(0, span.canonical_offset, span.numel).copy_(span.master);
      state.exp_avg.narrow(0, span.canonical_offset, span.numel).copy_(span.exp_avg);
      state.exp_avg_sq.narrow(0, span.canonical_offset, span.numel).copy_(span.exp_avg_sq);
    }
  }
  for (auto* t : {&state.master, &state.exp_avg, &state.exp_avg_sq}) {
    MPI_Allreduce(MPI_IN_PLACE, t->data_ptr<float>(), static_cast<int>(n), MPI_FLOAT, MPI_SUM, world.comm);
  }
  return state;
}

void load_state(ZeroOptimizer& optimizer, const CanonicalState& state) {
  for (auto& span : optimizer.state_spans()) {
    span.master.copy_(state.master.narrow(0, span.canonical_offset, span.numel));
    span.exp_avg.copy_(state.exp_avg.narrow(0, span.canonical_offset, span.numel));
    span.exp_avg_sq.copy_(state.exp_avg_sq.narrow(0, span.canonical_offset, span.numel));
  }
  optimizer.set_step_count(state.step);
  optimizer.publish_master_weights();
}

TEST(ZeroOptimizer, SaveOnNRanksResumeOnFewerAndOnTheSame) {
  const auto world = comm::World::of(MPI_COMM_WORLD);
  for (OffloadDevice offload : {OffloadDevice::cpu, OffloadDevice::none}) {
    const ZeroSetup setup{2, offload, 1, 1.0};
    const ZeroConfig config = zero_config(setup);

    // The run that never stops: 10 steps, state taken after 5.
    auto comm = make_comm(world);
    TinyNet uninterrupted = make_net(1, comm->device());
    ZeroOptimizer optimizer(trainable_parameters(*uninterrupted), default_param_groups(config), config, *comm);
    for (int step = 0; step < 5; ++step) zero_step(uninterrupted, optimizer, *comm, step, 1);
    const CanonicalState saved = gather_state(optimizer, world);
    for (int step = 5; step < 10; ++step) zero_step(uninterrupted, optimizer, *comm, step, 1);

    // Same world size, fresh (differently initialised) model: bit-exact.
    {
      TinyNet resumed = make_net(99, comm->device());
      ZeroOptimizer again(trainable_parameters(*resumed), default_param_groups(config), config, *comm);
      load_state(again, saved);
      for (int step = 5; step < 10; ++step) zero_step(resumed, again, *comm, step, 1);
      const auto want = uninterrupted->named_parameters();
      for (const auto& item : resumed->named_parameters()) {
        EXPECT_TRUE(torch::equal(item.value(), want[item.key()])) << "same-world resume differs in " << item.key();
      }
    }

    // Fewer ranks (3 -> 2, 2 -> 1): the same batch split differently; equal to rounding.
    const int fewer = std::max(1, world.size - 1);
    const comm::World smaller = world.subset(world.rank < fewer);
    if (smaller.comm != MPI_COMM_NULL) {
      auto small_comm = make_comm(smaller);
      TinyNet resumed = make_net(99, small_comm->device());
      ZeroOptimizer again(trainable_parameters(*resumed), default_param_groups(config), config, *small_comm);
      load_state(again, saved);
      for (int step = 5; step < 10; ++step) zero_step(resumed, again, *small_comm, step, 1);
      expect_close(resumed, uninterrupted, 1e-6, "resumed on " + std::to_string(fewer) + " rank(s)");
      EXPECT_EQ(again.step_count(), 10);
    }
    MPI_Barrier(world.comm);
  }
}

TEST(ZeroOptimizer, ZeroGradOnTheModuleIsCaughtWithAMessage) {
  const auto world = comm::World::of(MPI_COMM_WORLD);
  auto comm = make_comm(world);
  TinyNet net = make_net(1, comm->device());
  const ZeroSetup setup{2, OffloadDevice::none, 1, 1.0};
  ZeroOptimizer optimizer(trainable_parameters(*net), default_param_groups(zero_config(setup)), zero_config(setup), *comm);
  optimizer.begin_micro_step(true);
  for (auto& p : net->parameters()) p.mutable_grad() = torch::Tensor();
  try {
    optimizer.step(kLr);
    FAIL() << "no error";
  } catch (const vesseltune::Error& error) {
    EXPECT_NE(std::string(error.what()).find("no longer points into the optimizer's buffer"), std::string::npos);
  }
}

}  // namespace
