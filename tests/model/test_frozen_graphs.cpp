// CUDA graphs of the frozen encoders (frozen_graphs.h): on a GPU, the InternViT and the SAM2 image encoder give
// the same outputs through their graphs as eagerly, for inputs of two shapes in turns (first sighting eager,
// second captured, later replays; one shared pool), and the outputs belong to the caller (a later replay does
// not change them). On the CPU only the refusal is tested.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "test_support.h"
#include "vesseltune/model/frozen_graphs.h"
#include "vesseltune/model/sa2va_model.h"
#include "vesseltune/model/sam2/sam2_config.h"

namespace vm = vesseltune::model;

namespace {

TEST(FrozenGraphs, RefuseCpuInputs) {
  const torch::nn::Linear layer(2, 3);
  EXPECT_FALSE(vm::FrozenGraphs::can_replay(*layer, torch::zeros({2, 2})));  // a CPU input
  vm::FrozenGraphs graphs;
  try {
    graphs.run(torch::zeros({2, 3}), [](const at::Tensor& x) { return std::vector<at::Tensor>{x}; });
    FAIL() << "no error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("must be on a GPU"), std::string::npos) << e.what();
  }
}

// Eager outputs of FORWARD for each input, then the same through graphs (twice over the list).
void expect_graphs_match_eager(const std::function<std::vector<at::Tensor>(const at::Tensor&)>& eager,
                               const std::function<std::vector<at::Tensor>(const at::Tensor&)>& graphed,
                               const std::vector<at::Tensor>& inputs) {
  torch::NoGradGuard no_grad;
  std::vector<std::vector<at::Tensor>> expected;
  for (const at::Tensor& x : inputs) expected.push_back(eager(x));
  std::vector<std::vector<at::Tensor>> kept;
  for (int round = 0; round < 2; ++round) {
    for (size_t i = 0; i < inputs.size(); ++i) {
      std::vector<at::Tensor> got = graphed(inputs[i]);
      ASSERT_EQ(got.size(), expected[i].size());
      for (size_t k = 0; k < got.size(); ++k) {
        EXPECT_TRUE(torch::equal(got[k], expected[i][k])) << "input " << i << " output " << k << " round " << round;
      }
      kept.push_back(std::move(got));
    }
  }
  // Outputs returned earlier are still the caller's after all later replays.
  for (size_t i = 0; i < inputs.size(); ++i) {
    for (size_t k = 0; k < kept[i].size(); ++k) EXPECT_TRUE(torch::equal(kept[i][k], expected[i][k]));
  }
}

TEST(FrozenGraphs, EncodersReplayAsTheyRunEagerly) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "needs a GPU";
  torch::manual_seed(3);
  const at::Device gpu(at::kCUDA, 0);
  vm::Sa2VAModel model(vm::testing::small_config(), vm::sam2::sam2_preset("tiny"));
  model->to(gpu, at::kBFloat16);
  for (auto& p : model->parameters()) p.set_requires_grad(false);
  const int64_t side = vm::testing::small_config().vision.image_size;
  const auto bf16 = at::TensorOptions().device(gpu).dtype(at::kBFloat16);
  // Tiles: 1, 2, 1, 2, 1 (two shapes in turns, several inputs of each).
  std::vector<at::Tensor> tiles;
  for (int64_t n : {1, 2, 1, 2, 1}) tiles.push_back(torch::randn({n, 3, side, side}, bf16));
  auto vit = model->vision_model;
  expect_graphs_match_eager(
      [&](const at::Tensor& x) {
        vit->cuda_graphs = false;
        return std::vector<at::Tensor>{vit->forward(x)};
      },
      [&](const at::Tensor& x) {
        vit->cuda_graphs = true;
        return std::vector<at::Tensor>{vit->forward(x)};
      },
      tiles);

  auto sam2 = model->grounding_encoder->sam2_model();
  const int64_t size = sam2->config().image_size;
  std::vector<at::Tensor> images;
  for (int64_t n : {1, 2, 1, 2}) images.push_back(torch::randn({n, 3, size, size}, bf16));
  expect_graphs_match_eager(
      [&](const at::Tensor& x) {
        sam2->cuda_graphs = false;
        return sam2->backbone_fpn(x);
      },
      [&](const at::Tensor& x) {
        sam2->cuda_graphs = true;
        return sam2->backbone_fpn(x);
      },
      images);
}

}  // namespace
