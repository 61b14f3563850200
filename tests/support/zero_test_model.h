#pragma once
// The small network and data the ZeRO tests train (equivalence, checkpoints): the same seed gives the same
// network on every rank; each step's batch is drawn from the step number, so every rank and the
// single-process reference see the same samples. Sizes are chosen so that buckets need padding at world 2 and 3.
// Each sample also looks up one row of an embedding: with sparse gradients (as vesseltune trains embed_tokens)
// ZeRO reduces it by rows; the reference's are dense. Step s uses 3 + s of the rows only, so that rows come into use
// over the steps.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>

#include "vesseltune/comm/launch.h"
#include "vesseltune/optim/zero_optimizer.h"

namespace vesseltune::testing_support {

using namespace vesseltune::optim;

inline constexpr int kBatch = 48;  // divisible by world 1, 2, 3, 4, 6, 8 times accumulation 1..2
inline constexpr double kLr = 1e-2;
inline constexpr double kWeightDecay = 0.1;
inline constexpr int64_t kBucket = 40;
inline constexpr int64_t kVocab = 31;  // more rows than a rank's samples: some rows get no gradient on some ranks

struct TinyNetImpl : torch::nn::Module {
  explicit TinyNetImpl(bool sparse_embedding) {
    fc1 = register_module("fc1", torch::nn::Linear(7, 13));
    embed = register_module("embed", torch::nn::Embedding(torch::nn::EmbeddingOptions(kVocab, 13).sparse(sparse_embedding)));
    norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({13})));
    fc2 = register_module("fc2", torch::nn::Linear(13, 5));
    scale = register_parameter("scale", torch::full({5}, 1.5));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& ids) {
    return fc2(torch::tanh(norm(fc1(x) + embed(ids)))) * scale;
  }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
  torch::nn::Embedding embed{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  torch::Tensor scale;
};
TORCH_MODULE(TinyNet);

struct ZeroSetup {
  int stage;
  OffloadDevice offload;
  int accumulation;
  double clip;
  double offload_ratio = 1.0;  // offload cpu: share of the shard whose state is on the host
};

inline std::unique_ptr<comm::Communicator> make_comm(const comm::World& world) {
  return comm::make_communicator(world, comm::Backend::automatic, std::chrono::seconds(120));
}

// ZeRO trains the sparse-gradient net; torch::optim::AdamW, the reference, takes dense gradients only.
inline TinyNet make_net(uint64_t seed, const at::Device& device, bool sparse_embedding = true) {
  torch::manual_seed(seed);
  TinyNet net(sparse_embedding);
  net->to(device);
  return net;
}

struct Data {
  torch::Tensor x, y, ids;
};
inline Data batch(int step, const at::Device& device) {
  torch::manual_seed(1000 + step);
  torch::Tensor x = torch::randn({kBatch, 7}), y = torch::randn({kBatch, 5});
  const int64_t rows = std::min<int64_t>(kVocab, 3 + step);
  // Spread over the table (7 is prime to kVocab), so that rows in use fall where ranks' shards cut it.
  const torch::Tensor ids = torch::randint(0, rows, {kBatch}, torch::kLong) * 7 % kVocab;
  return Data{x.to(device), y.to(device), ids.to(device)};
}

inline ZeroConfig zero_config(const ZeroSetup& setup) {
  ZeroConfig config;
  config.stage = setup.stage;
  config.offload = setup.offload;
  config.offload_ratio = setup.offload_ratio;
  config.gradient_clipping = setup.clip;
  config.weight_decay = kWeightDecay;
  config.reduce_bucket_numel = kBucket;
  config.optimizer_threads = 2;
  return config;
}

// One optimizer step of the ZeRO run: this rank's rows of the batch, in `accumulation` micro-steps.
inline StepResult zero_step(TinyNet& net, ZeroOptimizer& optimizer, const comm::Communicator& comm, int step, int accumulation,
                     double poison = 1.0) {
  const Data data = batch(step, comm.device());
  const int rows = kBatch / comm.size();
  const int micro_rows = rows / accumulation;
  for (int micro = 0; micro < accumulation; ++micro) {
    optimizer.begin_micro_step(micro == accumulation - 1);
    const int64_t first = comm.rank() * rows + micro * micro_rows;
    const auto x = data.x.narrow(0, first, micro_rows), y = data.y.narrow(0, first, micro_rows);
    const auto ids = data.ids.narrow(0, first, micro_rows);
    const auto loss = torch::mse_loss(net->forward(x, ids), y) / accumulation * poison;
    loss.backward();
  }
  return optimizer.step(kLr);
}

// Each tensor within RELATIVE of its largest value, or of 1 where that is smaller: a tensor that starts at zero
// (norm.bias) holds only a few lr after a few steps, while the rounding of each AdamW update is relative to lr. On a
// GPU the fused AdamW kernel and torch's reference round differently (measured: 3.4e-8 on norm.bias at 0.02 after 2
// steps); a row left out or updated twice is off by ~lr = 1e-2.
inline void expect_close(TinyNet& actual, TinyNet& expected, double relative, const std::string& what) {
  const auto a = actual->named_parameters(), e = expected->named_parameters();
  for (const auto& item : e) {
    const auto& want = item.value();
    const auto& got = a[item.key()];
    const double scale = std::max(1.0, want.abs().max().item<double>());
    const double error = (got - want).abs().max().item<double>();
    EXPECT_LE(error, relative * scale) << what << ": " << item.key() << " differs by " << error << " (scale " << scale << ")";
  }
}

}  // namespace vesseltune::testing_support
