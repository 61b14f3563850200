// SAM2 half of Sa2VA without reference files: key names against the Sa2VA checkpoint listing, window
// partitioning, shapes, which parameters the Sa2VA losses reach, finite-difference gradients of the mask
// decoder in double precision, SAM2's object-score gate and the inference resize.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>
#include <torch/nn/module.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "vesseltune/model/sa2va_losses.h"
#include "vesseltune/model/sam2/grounding_encoder.h"
#include "vesseltune/model/sam2/hiera_block.h"

namespace vesseltune::model::sam2 {
namespace {

std::string shape_string(at::IntArrayRef sizes) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < sizes.size(); ++i) out << (i ? ", " : "") << sizes[i];
  out << "]";
  return out.str();
}

std::map<std::string, std::string> named_shapes(const torch::nn::Module& module) {
  std::map<std::string, std::string> shapes;
  for (const auto& p : module.named_parameters()) shapes[p.key()] = shape_string(p.value().sizes());
  for (const auto& b : module.named_buffers()) shapes[b.key()] = shape_string(b.value().sizes());
  return shapes;
}

bool unused_in_images(const std::string& name) {
  for (const std::string& prefix : Sam2ModelImpl::unused_checkpoint_prefixes()) {
    if (name.rfind("sam2_model." + prefix, 0) == 0) return true;
  }
  return false;
}

TEST(Sam2Keys, HieraLargeMatchesSa2vaCheckpointNamesAndShapes) {
  // The listing holds every grounding_encoder.* tensor of a Sa2VA checkpoint (prefix dropped), name<TAB>shape.
  std::ifstream listing(std::string(VESSELTUNE_FIXTURES_DIR) + "/sam2_hiera_large_keys.txt");
  ASSERT_TRUE(listing) << "missing tests/fixtures/sam2_hiera_large_keys.txt";
  std::map<std::string, std::string> expected;
  std::string line;
  size_t skipped = 0;
  while (std::getline(listing, line)) {
    const size_t tab = line.find('\t');
    const std::string name = line.substr(0, tab);
    if (unused_in_images(name)) {
      ++skipped;
      continue;
    }
    expected[name] = line.substr(tab + 1);
  }
  EXPECT_GT(skipped, 100u) << "the memory modules should be among the checkpoint's names";
  GroundingEncoder encoder(sam2_preset("hiera-large"));
  EXPECT_EQ(named_shapes(*encoder), expected);
}

TEST(Sam2Windows, PartitionPadsAndUnpartitionRestores) {
  at::Tensor x = at::randn({2, 5, 7, 3});
  auto [windows, padded] = window_partition(x, 3);
  EXPECT_EQ(padded[0], 6);
  EXPECT_EQ(padded[1], 9);
  EXPECT_EQ(windows.sizes(), (std::vector<int64_t>{2 * 2 * 3, 3, 3, 3}));
  // Window (image 1, row 1, col 2) holds x[1, 3:6, 6:9] with zeros past the edge.
  at::Tensor w = windows[1 * 6 + 1 * 3 + 2];
  EXPECT_TRUE(at::equal(w.slice(0, 0, 2).slice(1, 0, 1), x[1].slice(0, 3, 5).slice(1, 6, 7)));
  EXPECT_EQ(w.slice(0, 2).abs().sum().item<float>(), 0.0f);
  EXPECT_EQ(w.slice(1, 1).abs().sum().item<float>(), 0.0f);
  EXPECT_TRUE(at::equal(window_unpartition(windows, 3, padded, {5, 7}), x));
}

struct TinyGrounding : ::testing::Test {
  void SetUp() override {
    at::manual_seed(7);
    config = sam2_preset("tiny");
    encoder = GroundingEncoder(config);
    images = at::randn({2, 3, config.image_size, config.image_size});
    language = at::randn({3, config.d_model});
  }
  Sam2Config config;
  GroundingEncoder encoder{nullptr};
  at::Tensor images, language;
};

TEST_F(TinyGrounding, ShapesAndPerPromptImageOrder) {
  LanguagePromptedMasks out = encoder->forward(images, language, {2, 1});
  const int64_t m = config.low_res_mask_size();
  EXPECT_EQ(out.best_mask_logits.sizes(), (std::vector<int64_t>{3, m, m}));
  EXPECT_EQ(out.best_mask_logits.scalar_type(), at::kFloat);
  EXPECT_EQ(out.multimask_logits.sizes(), (std::vector<int64_t>{3, 3, m, m}));
  // Prompt 2 belongs to image 1: the same as running image 1 alone with that prompt.
  LanguagePromptedMasks alone = encoder->forward(images.slice(0, 1, 2), language.slice(0, 2, 3), {1});
  EXPECT_TRUE(at::allclose(out.multimask_logits[2], alone.multimask_logits[0], 1e-5, 1e-5));
}

TEST_F(TinyGrounding, ObjectScoreGateAndBestIou) {
  Sam2Model sam = encoder->sam2_model();
  ImageFeatures features = sam->encode_image(images).repeat_per_prompt({2, 1});
  LanguagePromptedMasks gated = sam->segment(features, language, true);
  LanguagePromptedMasks raw = sam->segment(features, language, false);
  for (int64_t i = 0; i < 3; ++i) {
    const bool present = raw.object_score_logits[i][0].item<float>() > 0;
    at::Tensor expected = present ? raw.multimask_logits[i] : at::full_like(raw.multimask_logits[i], -1024.0);
    EXPECT_TRUE(at::equal(gated.multimask_logits[i], expected)) << "prompt " << i;
    const int64_t best = raw.iou_predictions[i].argmax().item<int64_t>();
    EXPECT_TRUE(at::equal(raw.best_mask_logits[i], raw.multimask_logits[i][best]));
  }
}

TEST_F(TinyGrounding, LossesReachOnlyTheMaskDecoder) {
  encoder->sam2_model()->train_mask_decoder_only();
  LanguagePromptedMasks out = encoder->sam2_model()->segment(
      encoder->sam2_model()->encode_image(images).repeat_per_prompt({2, 1}), language, /*gate=*/false);
  at::Tensor targets = (at::rand_like(out.best_mask_logits) > 0.5).to(at::kFloat);
  MaskLossOptions options;
  options.num_points = 64;
  sa2va_mask_losses(out.best_mask_logits, targets, options).total().backward();
  size_t decoder_with_grad = 0;
  for (const auto& p : encoder->named_parameters()) {
    const bool in_decoder = p.key().rfind("sam2_model.sam_mask_decoder.", 0) == 0;
    EXPECT_EQ(p.value().requires_grad(), in_decoder) << p.key();
    if (!in_decoder) {
      EXPECT_FALSE(p.value().grad().defined()) << p.key() << " got a gradient";
    }
    if (in_decoder && p.value().grad().defined() && p.value().grad().abs().sum().item<double>() > 0) {
      ++decoder_with_grad;
    }
  }
  // Reached: conv_s0/s1, transformer, upscaling, tokens, hypernetworks of the chosen multimask outputs.
  EXPECT_GT(decoder_with_grad, 40u);
}

TEST_F(TinyGrounding, FiniteDifferenceGradientsOfDecoderInDouble) {
  encoder->to(at::kDouble);
  Sam2Model sam = encoder->sam2_model();
  sam->train_mask_decoder_only();
  at::Tensor images64 = images.to(at::kDouble), language64 = language.to(at::kDouble);
  at::Tensor targets = (at::rand({3, config.low_res_mask_size(), config.low_res_mask_size()}) > 0.5).to(at::kDouble);
  MaskLossOptions options;
  options.dense = true;
  options.cldice_weight = 0.3;
  options.cldice_iterations = 2;
  auto loss = [&]() {
    LanguagePromptedMasks out =
        sam->segment(sam->encode_image(images64).repeat_per_prompt({2, 1}), language64, /*gate=*/false);
    // The losses run in float32 as in Sa2VA; for the check keep double end to end.
    at::Tensor logits = out.multimask_logits.gather(
        1, out.iou_predictions.argmax(1).reshape({3, 1, 1, 1}).expand({3, 1, out.multimask_logits.size(2),
                                                                       out.multimask_logits.size(3)})).squeeze(1);
    at::Tensor bce = at::binary_cross_entropy_with_logits(logits, targets);
    at::Tensor p = at::sigmoid(logits);
    at::Tensor dice = (1.0 - (2.0 * (p * targets).sum({1, 2}) + 1) / (p.sum({1, 2}) + targets.sum({1, 2}) + 1)).mean();
    return 2.0 * bce + 0.5 * dice + 0.3 * soft_skeleton(p, 2).mean();
  };
  for (const auto& p : sam->mask_decoder()->parameters()) p.mutable_grad() = at::Tensor();
  loss().backward();
  const std::vector<std::string> names = {"sam_mask_decoder.conv_s0.weight",
                                          "sam_mask_decoder.output_upscaling.3.bias",
                                          "sam_mask_decoder.transformer.layers.1.mlp.layers.0.weight",
                                          "sam_mask_decoder.output_hypernetworks_mlps.2.layers.2.weight"};
  auto params = sam->named_parameters();
  for (const std::string& name : names) {
    at::Tensor param = params[name];
    at::Tensor analytic = param.grad().flatten();
    at::Tensor flat = param.detach().flatten();
    for (int64_t j : {int64_t{0}, flat.numel() / 2, flat.numel() - 1}) {
      const double h = 1e-6, x0 = flat[j].item<double>();
      c10::NoGradGuard no_grad;
      flat[j].fill_(x0 + h);
      const double up = loss().item<double>();
      flat[j].fill_(x0 - h);
      const double down = loss().item<double>();
      flat[j].fill_(x0);
      const double numeric = (up - down) / (2 * h);
      EXPECT_NEAR(analytic[j].item<double>(), numeric, 1e-6 + 1e-5 * std::abs(numeric)) << name << "[" << j << "]";
    }
  }
}

TEST(Sam2Inference, ProbabilitiesFromLogitsResizeBilinearlyThenTakeTheSigmoid) {
  // Row [-1, 1] at 2 pixels → 4 pixels (align_corners false): [-1, -0.5, 0.5, 1], then the sigmoid.
  at::Tensor logits = at::tensor({-1.0f, 1.0f, -1.0f, 1.0f}).reshape({1, 2, 2});
  const at::Tensor row = at::sigmoid(at::tensor({-1.0f, -0.5f, 0.5f, 1.0f}));
  EXPECT_TRUE(at::allclose(probabilities_from_logits(logits, 4, 4, 4), row.repeat({4}).reshape({1, 4, 4}), 0, 1e-6));
  // Then to a non-square original size: 4 → 2 columns averages pairs: [-0.75, 0.75].
  const at::Tensor two = at::sigmoid(at::tensor({-0.75f, 0.75f}));
  EXPECT_TRUE(at::allclose(probabilities_from_logits(logits, 4, 3, 2), two.repeat({3}).reshape({1, 3, 2}), 0, 1e-6));
}

}  // namespace
}  // namespace vesseltune::model::sam2
