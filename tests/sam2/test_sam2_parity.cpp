// Parity with transformers' Sam2Model (tests/fixtures/make_sam2_fixtures.py, random weights, `tiny` preset):
// the weights load under SAM2's own names from a Sa2VA-style file (prefix grounding_encoder., video-memory
// tensors skipped), and the FPN levels and the mask decoder's outputs for Sa2VA's prompt match ≤ 1e-4
// relative in float32.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <string>
#include <vector>

#include "vesseltune/io/safetensors.h"
#include "vesseltune/model/sam2/grounding_encoder.h"

namespace vesseltune::model::sam2 {
namespace {

std::string fixture(const std::string& name) { return std::string(VESSELTUNE_FIXTURES_DIR) + "/" + name; }

::testing::AssertionResult close(const at::Tensor& actual, const at::Tensor& expected, double rel = 1e-4) {
  if (actual.sizes() != expected.sizes()) {
    return ::testing::AssertionFailure() << "shape " << actual.sizes() << " vs " << expected.sizes();
  }
  const double scale = expected.abs().max().item<double>();
  const double err = (actual.to(at::kDouble) - expected.to(at::kDouble)).abs().max().item<double>();
  if (err <= rel * scale) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "max abs error " << err << " > " << rel << " x max |expected| " << scale;
}

struct Sam2Parity : ::testing::Test {
  void SetUp() override {
    encoder = GroundingEncoder(sam2_preset("tiny"));
    io::LoadOptions options;
    options.prefix = "grounding_encoder.";
    for (const std::string& p : Sam2ModelImpl::unused_checkpoint_prefixes()) {
      options.ignore_prefixes.push_back("grounding_encoder.sam2_model." + p);
    }
    io::LoadReport report =
        io::load_into(*encoder, io::Checkpoint(fixture("sam2_tiny_weights.safetensors")), options);
    EXPECT_TRUE(report.missing.empty() && report.unexpected.empty() && report.mismatched.empty());
    encoder->eval();
  }
  GroundingEncoder encoder{nullptr};
  io::SafetensorsFile reference{fixture("sam2_tiny_io.safetensors")};
};

TEST_F(Sam2Parity, FpnLevelsMatchTransformers) {
  c10::NoGradGuard no_grad;
  std::vector<at::Tensor> fpn = encoder->sam2_model()->backbone_fpn(reference.tensor("pixel_values"));
  ASSERT_EQ(fpn.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_TRUE(close(fpn[i], reference.tensor("fpn." + std::to_string(i)))) << i;
}

TEST_F(Sam2Parity, MaskDecoderWithLanguagePromptMatchesTransformers) {
  ASSERT_TRUE(reference.contains("multimask_logits")) << "the fixture script could not run the HF decoder";
  c10::NoGradGuard no_grad;
  at::Tensor counts = reference.tensor("prompts_per_image");
  std::vector<int64_t> prompts(counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + counts.numel());
  Sam2Model sam = encoder->sam2_model();
  // transformers' Sam2Model has no object-score gate (that is SAM2's _forward_sam_heads): compare ungated.
  LanguagePromptedMasks out = sam->segment(sam->encode_image(reference.tensor("pixel_values")).repeat_per_prompt(prompts),
                                           reference.tensor("language_embeddings"), /*gate_by_object_score=*/false);
  EXPECT_TRUE(close(out.multimask_logits, reference.tensor("multimask_logits")));
  EXPECT_TRUE(close(out.iou_predictions, reference.tensor("iou_predictions")));
  EXPECT_TRUE(close(out.object_score_logits, reference.tensor("object_score_logits")));
}

}  // namespace
}  // namespace vesseltune::model::sam2
