// ZeRO on N ranks against single-process torch::optim::AdamW on the whole batch. (Saving and resuming on
// another world size: tests/train/test_optimizer_checkpoint.cpp.)
//
// Every rank builds the same small network from the same seed; the reference takes full-batch steps with
// torch::optim::AdamW (and clip_grad_norm_), the ZeRO run splits the batch across ranks and into G
// accumulation micro-steps. Sizes are chosen so that buckets need padding at world 2 and 3. The same binary
// runs on the GPU machine, where the communicator is NCCL and tensors live on the rank's GPU.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

#include "vesseltune/core/check.h"
#include "zero_test_model.h"

using namespace vesseltune;
using namespace vesseltune::optim;
using namespace vesseltune::testing_support;

namespace {

std::string name_of(const testing::TestParamInfo<ZeroSetup>& info) {
  const auto& s = info.param;
  const std::string offload = s.offload == OffloadDevice::none ? "_device"
                              : s.offload_ratio == 1.0       ? "_offload"
                                                             : "_offload" + std::to_string(std::lround(100 * s.offload_ratio)) + "pct";
  return "stage" + std::to_string(s.stage) + offload + "_accum" + std::to_string(s.accumulation) +
         (s.clip > 0 ? "_clip" : "_noclip");
}

// torch's AdamW with the optimizer's two groups: weight decay for matrices, none for 1-D tensors.
std::unique_ptr<torch::optim::AdamW> reference_adamw(const std::vector<torch::Tensor>& parameters, double weight_decay) {
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& p : parameters) (p.dim() <= 1 ? no_decay : decay).push_back(p);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                 torch::optim::AdamWOptions(kLr).weight_decay(weight_decay)));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(kLr).weight_decay(0)));
  return std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(kLr));
}

// The reference: torch's own AdamW on the full batch, with the same parameter groups. A stale step takes the
// gradient at the parameters from before the previous step (a one-step delayed update).
struct Reference {
  TinyNet net, lagged;
  std::unique_ptr<torch::optim::AdamW> optimizer;
  std::vector<double> norms;
  std::vector<torch::Tensor> previous;  // the parameters before the last step
  double clip;

  Reference(const at::Device& device, double clip_norm, double weight_decay = kWeightDecay)
      : net(make_net(1, device, false)),
        lagged(make_net(1, device, false)),
        optimizer(reference_adamw(net->parameters(), weight_decay)),
        clip(clip_norm) {}
  void step(int step_index, bool stale = false) {
    std::vector<torch::Tensor> before;
    for (const auto& p : net->parameters()) before.push_back(p.detach().clone());
    const Data data = batch(step_index, net->parameters()[0].device());
    optimizer->zero_grad();
    if (stale) {
      torch::NoGradGuard no_grad;
      for (size_t i = 0; i < previous.size(); ++i) lagged->parameters()[i].copy_(previous[i]);
    }
    {
      TinyNet& at = stale ? lagged : net;
      for (auto& p : at->parameters()) p.mutable_grad() = torch::Tensor();
      torch::mse_loss(at->forward(data.x, data.ids), data.y).backward();
    }
    if (stale) {
      for (size_t i = 0; i < previous.size(); ++i) net->parameters()[i].mutable_grad() = lagged->parameters()[i].grad().clone();
    }
    previous = std::move(before);
    // max_norm infinity measures without clipping
    norms.push_back(torch::nn::utils::clip_grad_norm_(net->parameters(), clip > 0 ? clip : 1e30));
    optimizer->step();
  }
};

class ZeroEquivalence : public testing::TestWithParam<ZeroSetup> {};

TEST_P(ZeroEquivalence, TwentyStepsEqualSingleProcessAdamW) {
  const ZeroSetup setup = GetParam();
  const auto world = comm::World::of(MPI_COMM_WORLD);
  auto comm = make_comm(world);
  const at::Device device = comm->device();

  Reference reference(device, setup.clip);
  TinyNet net = make_net(1, device);
  ZeroOptimizer optimizer(trainable_parameters(*net), default_param_groups(zero_config(setup)), zero_config(setup), *comm);
  // The embedding is reduced by rows (the last bucket), the rest as whole buckets.
  const auto& last = optimizer.layout().buckets().back();
  ASSERT_TRUE(last.sparse_rows);
  EXPECT_EQ(optimizer.layout().slots()[last.slots.front()].name, "embed.weight");
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
                    ZeroSetup{2, OffloadDevice::cpu, 1, 0}, ZeroSetup{2, OffloadDevice::cpu, 2, 0.05},
                    // Part of the state on the host, part on the device (DeepSpeed's offload_optimizer.ratio):
                    // the split falls inside a bucket and inside a tensor.
                    ZeroSetup{2, OffloadDevice::cpu, 2, 0.05, 0.5}, ZeroSetup{1, OffloadDevice::cpu, 1, 0, 0.3},
                    ZeroSetup{0, OffloadDevice::cpu, 1, 0.05, 0.7}),
    name_of);

// ZeRO-Offload's delayed parameter update: exact for the warm-up steps and the first delayed one, then each step's
// gradient is taken at the parameters of two steps before (the model lags the optimizer by one step until
// finish_delayed_update()). Sharded and replicated state, clipping active, accumulation 2.
TEST(ZeroOptimizer, DelayedUpdateTakesEachGradientOneStepLate) {
  const auto world = comm::World::of(MPI_COMM_WORLD);
  auto comm = make_comm(world);
  const at::Device device = comm->device();
  constexpr int kWarmup = 3, kSteps = 10;
  for (int stage : {2, 0}) {
    SCOPED_TRACE("stage " + std::to_string(stage));
    const ZeroSetup setup{stage, OffloadDevice::cpu, 2, 0.05};
    ZeroConfig config = zero_config(setup);
    config.delayed_update = true;
    config.delayed_update_warmup = kWarmup;
    Reference reference(device, setup.clip);
    TinyNet net = make_net(1, device);
    ZeroOptimizer optimizer(trainable_parameters(*net), default_param_groups(config), config, *comm);
    for (int step = 0; step < kSteps; ++step) {
      const int number = step + 1;
      reference.step(step, /*stale=*/number >= kWarmup + 2);
      const auto result = zero_step(net, optimizer, *comm, step, setup.accumulation);
      ASSERT_TRUE(result.applied);
      EXPECT_NEAR(result.grad_norm, reference.norms.back(), 1e-5 * reference.norms.back()) << "step " << number;
      // Until the delay starts the model holds this step's parameters, afterwards the previous step's.
      TinyNet expected = make_net(1, device);
      {
        torch::NoGradGuard no_grad;
        const auto& source = number <= kWarmup ? reference.net->parameters() : reference.previous;
        for (size_t i = 0; i < source.size(); ++i) expected->parameters()[i].copy_(source[i]);
      }
      expect_close(net, expected, 1e-6, "model after step " + std::to_string(number));
    }
    optimizer.finish_delayed_update();
    expect_close(net, reference.net, 1e-6, "after finish_delayed_update");
    // What a checkpoint reads is the state of every step taken.
    EXPECT_EQ(optimizer.step_count(), kSteps);
    EXPECT_NO_THROW(optimizer.state_spans());
  }
}

// Without weight decay the host updates only the embedding rows that some step has used (the others have zero state
// and zero gradient, so AdamW would leave them as they are). The model must still equal torch's AdamW, which updates
// every row, and the rows in use must be the ids seen so far (they are counted with the state on the device too,
// which updates every row). Stage 2 and 0; exact and delayed host updates.
TEST(ZeroOptimizer, EmbeddingRowsNotInUseAreLeftOutOfTheHostUpdateExactly) {
  const auto world = comm::World::of(MPI_COMM_WORLD);
  auto comm = make_comm(world);
  const at::Device device = comm->device();
  constexpr int kSteps = 12;
  for (int stage : {2, 0}) {
    for (int variant = 0; variant < 3; ++variant) {
      const bool delayed = variant == 1;
      const OffloadDevice offload = variant == 2 ? OffloadDevice::none : OffloadDevice::cpu;
      SCOPED_TRACE("stage " + std::to_string(stage) + (delayed ? ", delayed" : "") + (variant == 2 ? ", on the device" : ""));
      const ZeroSetup setup{stage, offload, 2, 0.05};
      ZeroConfig config = zero_config(setup);
      config.weight_decay = 0.0;
      config.delayed_update = delayed;
      config.delayed_update_warmup = 0;
      Reference reference(device, setup.clip, 0.0);
      TinyNet net = make_net(1, device);
      ZeroOptimizer optimizer(trainable_parameters(*net), default_param_groups(config), config, *comm);
      std::set<int64_t> seen;
      for (int step = 0; step < kSteps; ++step) {
        reference.step(step, /*stale=*/delayed && step >= 1);
        ASSERT_TRUE(zero_step(net, optimizer, *comm, step, setup.accumulation).applied);
        const at::Tensor ids = batch(step, at::kCPU).ids;
        for (int64_t i = 0; i < ids.numel(); ++i) seen.insert(ids[i].item<int64_t>());
        EXPECT_EQ(optimizer.sparse_rows_in_use(), static_cast<int64_t>(seen.size())) << "step " << step + 1;
        if (!delayed) expect_close(net, reference.net, 1e-6, "after step " + std::to_string(step + 1));
      }
      optimizer.finish_delayed_update();
      expect_close(net, reference.net, 1e-6, "at the end");
      EXPECT_LT(static_cast<int64_t>(seen.size()), kVocab) << "some rows should never have been used";
    }
  }
}

// A head that only some steps use (as Sa2VA's loss never uses SAM2's IoU and object-score heads). After a step
// without it, its bucket goes out as soon as the backward pass starts; a step that does use it gets the bucket
// reduced again. ZeRO, like DeepSpeed, updates an unused tensor with a zero gradient: so does the reference here.
struct SometimesUsedNetImpl : torch::nn::Module {
  SometimesUsedNetImpl() {
    fc = register_module("fc", torch::nn::Linear(7, 5));
    head = register_module("head", torch::nn::Linear(7, 5));  // 40 elements: bucket 0 on its own
  }
  torch::Tensor forward(const torch::Tensor& x, bool use_head) {
    // The head first: the backward pass reaches it last, after fc's gradients have sent its bucket out.
    const torch::Tensor h = use_head ? head(x) : torch::Tensor();
    const torch::Tensor y = fc(x);
    return use_head ? y + h : y;
  }
  torch::nn::Linear fc{nullptr}, head{nullptr};
};
TORCH_MODULE(SometimesUsedNet);

TEST(ZeroOptimizer, BucketOfATensorWithoutGradientGoesOutEarlyAndAgainWhenItGetsOne) {
  const auto world = comm::World::of(MPI_COMM_WORLD);
  auto comm = make_comm(world);
  const at::Device device = comm->device();
  const auto uses_head = [](int step) { return step % 3 == 1; };
  for (OffloadDevice offload : {OffloadDevice::none, OffloadDevice::cpu}) {
    SCOPED_TRACE(offload == OffloadDevice::cpu ? "offload cpu" : "offload none");
    SometimesUsedNet reference, net;
    for (SometimesUsedNet* made : {&reference, &net}) {
      torch::manual_seed(5);
      *made = SometimesUsedNet();
      (*made)->to(device);
    }
    const auto adamw = reference_adamw(reference->parameters(), kWeightDecay);

    ZeroConfig config = zero_config(ZeroSetup{2, offload, 2, 0.0});
    ZeroOptimizer optimizer(trainable_parameters(*net), default_param_groups(config), config, *comm);
    ASSERT_EQ(optimizer.layout().buckets().size(), 2u);
    for (int step = 0; step < 8; ++step) {
      const Data data = batch(step, device);
      adamw->zero_grad();
      torch::mse_loss(reference->forward(data.x, uses_head(step)), data.y).backward();
      for (auto& p : reference->parameters()) {
        if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
      }
      adamw->step();
      const int rows = kBatch / comm->size(), micro_rows = rows / 2;
      for (int micro = 0; micro < 2; ++micro) {
        optimizer.begin_micro_step(micro == 1);
        const int64_t first = comm->rank() * rows + micro * micro_rows;
        const auto x = data.x.narrow(0, first, micro_rows), y = data.y.narrow(0, first, micro_rows);
        (torch::mse_loss(net->forward(x, uses_head(step)), y) / 2).backward();
      }
      ASSERT_TRUE(optimizer.step(kLr).applied);
      const auto want = reference->named_parameters();
      for (const auto& item : net->named_parameters()) {
        const double error = (item.value() - want[item.key()]).abs().max().item<double>();
        EXPECT_LE(error, 1e-6) << "step " << step + 1 << ": " << item.key();
      }
    }
  }
}

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

// Stage 2 on the device, the boundary micro-step begun: for the tests of misuse below.
struct BoundaryStep {
  std::unique_ptr<comm::Communicator> comm = make_comm(comm::World::of(MPI_COMM_WORLD));
  TinyNet net = make_net(1, comm->device());
  ZeroConfig config = zero_config(ZeroSetup{2, OffloadDevice::none, 1, 1.0});
  ZeroOptimizer optimizer{trainable_parameters(*net), default_param_groups(config), config, *comm};
  BoundaryStep() { optimizer.begin_micro_step(true); }
};

TEST(ZeroOptimizer, DenseGradientOfASparseRowsTensorIsRefusedWithItsName) {
  BoundaryStep s;
  const Data data = batch(0, s.comm->device());
  // The embedding's weight used as a dense tensor too, as an output layer tied to it would.
  const auto loss = torch::mse_loss(s.net->forward(data.x, data.ids), data.y) + s.net->embed->weight.sum();
  try {
    loss.backward();
    FAIL() << "no error";
  } catch (const std::exception& error) {
    EXPECT_NE(std::string(error.what()).find("'embed.weight' is reduced by sparse rows"), std::string::npos)
        << error.what();
  }
}

TEST(ZeroOptimizer, ZeroGradOnTheModuleIsCaughtWithAMessage) {
  BoundaryStep s;
  for (auto& p : s.net->parameters()) p.mutable_grad() = torch::Tensor();
  try {
    s.optimizer.step(kLr);
    FAIL() << "no error";
  } catch (const vesseltune::Error& error) {
    EXPECT_NE(std::string(error.what()).find("no longer points into the optimizer's buffer"), std::string::npos);
  }
}

}  // namespace
