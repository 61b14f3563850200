// Model FLOPs (model_flops.h) against counts taken from a built model: 2 FLOPs per multiply-add of each linear
// layer's weight for every token it sees, so the expected values come from the parameters' numels, not from the
// configuration arithmetic the counter uses.
#include <gtest/gtest.h>

#include "vesseltune/model/lora.h"
#include "vesseltune/perf/model_flops.h"
#include "vesseltune/setup/model_setup.h"

namespace vesseltune::perf {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Sum of the numels of the parameters whose key starts with PREFIX and ends with one of SUFFIXES.
double numel(const torch::nn::Module& model, const std::string& prefix, const std::vector<std::string>& suffixes) {
  double total = 0;
  for (const auto& p : model.named_parameters(true)) {
    if (p.key().rfind(prefix, 0) != 0) continue;
    for (const auto& suffix : suffixes) {
      if (ends_with(p.key(), suffix)) total += static_cast<double>(p.value().numel());
    }
  }
  return total;
}

TEST(ModelFlops, VisionProjectorAndLlmFollowTheParameterCounts) {
  setup::ModelShapes shapes;
  shapes.sa2va = model::Sa2VAConfig::preset("tiny");
  shapes.sam2 = model::sam2::sam2_preset("tiny");
  shapes.sa2va.image_context_token_id = 10;  // any ids of the vocabulary: the model checks them
  shapes.sa2va.seg_token_id = 11;
  model::Sa2VAModel net(shapes.sa2va, shapes.sam2);
  model::apply_lora(*net, shapes.sa2va.lora);

  const int64_t tiles = 3, tokens = 900, labels = 7;
  const SampleFlops f = training_flops_per_sample(shapes, tiles, tokens, labels);

  const auto& v = shapes.sa2va.vision;
  const double patches = 32 * 32, n = patches + 1, d = static_cast<double>(v.hidden_size);
  const double vision_linear = numel(*net, "vision_model.encoder.", {"qkv.weight", "proj.weight", "fc1.weight", "fc2.weight"});
  const double patch_embed = numel(*net, "vision_model.embeddings.patch_embedding.", {"weight"});
  EXPECT_DOUBLE_EQ(f.vision, tiles * (2 * patches * patch_embed + 2 * n * vision_linear +
                                      static_cast<double>(v.num_layers) * 4 * n * n * d));

  const double image_tokens = tiles * 256.0;
  const double first = numel(*net, "mlp1.1.", {"weight"}), second = numel(*net, "mlp1.3.", {"weight"});
  EXPECT_DOUBLE_EQ(f.projector, 2 * image_tokens * (2 * (first + second) + second));

  const auto& l = shapes.sa2va.llm;
  const double base = numel(*net, "language_model.model.layers.",
                            {"q_proj.weight", "k_proj.weight", "v_proj.weight", "o_proj.weight", "gate_proj.weight",
                             "up_proj.weight", "down_proj.weight"});
  const double lora = numel(*net, "language_model.model.layers.", {"lora_A.weight", "lora_B.weight"});
  const double lm_head = numel(*net, "language_model.lm_head.", {"weight"});
  ASSERT_GT(lora, 0);
  const double t = tokens, h = static_cast<double>(l.hidden_size);
  // forward + input gradients of everything, + weight gradients of the adapters and lm_head.
  EXPECT_DOUBLE_EQ(f.llm, 2 * t * base * 2 + 2 * t * lora * 3 + static_cast<double>(l.num_layers) * 4 * t * t * h * 3 +
                              2 * labels * lm_head * 3);

  EXPECT_GT(f.sam2_encoder, 0);
  EXPECT_GT(f.sam2_decoder, 0);
  EXPECT_DOUBLE_EQ(f.total(), f.vision + f.projector + f.llm + f.sam2_encoder + f.sam2_decoder);
}

}  // namespace
}  // namespace vesseltune::perf
