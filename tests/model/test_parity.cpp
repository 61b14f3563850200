// Parity with the Python reference: transformers' Qwen2ForCausalLM, InternVL's vision model + pixel shuffle +
// projector, and the Sa2VA vision-language forward composed from them, with tiny random weights renamed to
// Sa2VA's keys (tests/fixtures/make_sa2va_fixtures.py). fp32 on the CPU, ≤ 1e-4 relative.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <algorithm>

#include "test_support.h"
#include "vesseltune/io/safetensors.h"
#include "vesseltune/model/qwen2.h"
#include "vesseltune/model/sa2va_vision_language.h"

namespace vm = vesseltune::model;
namespace vio = vesseltune::io;
using vm::testing::close;
using vm::testing::fixture;

namespace {

// The Sa2VA-style config.json that make_sa2va_fixtures.py stored in the file's metadata.
vm::Sa2VAConfig fixture_config(const vio::SafetensorsFile& file, const std::string& name) {
  auto it = file.metadata().find("config");
  EXPECT_NE(it, file.metadata().end()) << name << " has no config metadata";
  return vm::Sa2VAConfig::from_json_text(it->second, name);
}

// Loads every weight of the module from the fixture (whose extra tensors are the inputs and outputs).
void load_weights(torch::nn::Module& module, const std::string& path, const std::string& prefix = "") {
  vio::LoadOptions options;
  options.strict = false;
  options.prefix = prefix;
  const vio::LoadReport report = vio::load_into(module, vio::Checkpoint(path), options);
  ASSERT_TRUE(report.missing.empty()) << "missing " << report.missing.size() << ", first " << report.missing[0];
  ASSERT_TRUE(report.mismatched.empty()) << "mismatched " << report.mismatched[0];
}

// The Sa2VA fixtures' token ids (make_sa2va_fixtures.py: IMAGE_CONTEXT_ID, SEG_ID).
vm::Sa2VAConfig with_token_ids(vm::Sa2VAConfig config) {
  config.image_context_token_id = 290;
  config.seg_token_id = 291;
  return config;
}

}  // namespace

TEST(Parity, Qwen2LogitsAndHiddenStateMatchTransformers) {
  torch::NoGradGuard no_grad;
  const std::string path = fixture("llm_parity.safetensors");
  vio::SafetensorsFile file(path);
  const vm::Sa2VAConfig config = fixture_config(file, path);
  EXPECT_EQ(config.llm.num_kv_heads, 2);
  EXPECT_DOUBLE_EQ(config.llm.rope_theta, 1e6);
  vm::Qwen2ForCausalLM llm(config.llm);
  load_weights(*llm, path, "language_model.");
  llm->eval();

  const at::Tensor ids = file.tensor("input.input_ids");
  const at::Tensor mask = file.tensor("input.attention_mask");
  const at::Tensor hidden = llm->model(llm->embed(ids), mask);
  const at::Tensor logits = llm->logits(hidden);
  // Padded positions of the second sequence are left out: nothing uses them.
  const at::Tensor valid = mask.to(at::kBool);
  EXPECT_TRUE(close(hidden.index({valid}), file.tensor("output.hidden").index({valid})));
  EXPECT_TRUE(close(logits.index({valid}), file.tensor("output.logits").index({valid})));
}

TEST(Parity, VisionFeaturesThroughPixelShuffleAndMlp1MatchTransformers) {
  torch::NoGradGuard no_grad;
  for (const std::string name : {"vision_parity.safetensors", "vision_qknorm_parity.safetensors"}) {
    SCOPED_TRACE(name);
    const std::string path = fixture(name);
    vio::SafetensorsFile file(path);
    vm::Sa2VAVisionLanguage model(with_token_ids(fixture_config(file, path)));
    {
      vio::LoadOptions options;
      options.strict = false;
      const vio::LoadReport report = vio::load_into(*model, vio::Checkpoint(path), options);
      for (const std::string& key : report.missing) {  // the fixture has no LLM weights
        ASSERT_TRUE(key.rfind("language_model.", 0) == 0 || key.rfind("text_hidden_fcs.", 0) == 0) << key;
      }
      ASSERT_TRUE(report.mismatched.empty()) << report.mismatched[0];
    }
    model->eval();
    const at::Tensor pixels = file.tensor("input.pixel_values");
    const at::Tensor vit = model->vision_model(pixels);  // [tiles, 1 + 16, C]
    EXPECT_TRUE(close(vit.slice(1, 1), file.tensor("output.vit_hidden").flatten(1, 2)));
    EXPECT_TRUE(close(model->image_features(pixels), file.tensor("output.features").flatten(0, 1)));
    // 84×84: a 6×6 patch grid, position embeddings interpolated from the trained 4×4.
    EXPECT_TRUE(close(model->image_features(file.tensor("input.pixel_values_large")),
                      file.tensor("output.features_large").flatten(0, 1)));
  }
}

TEST(Parity, Sa2VAForwardPromptEmbeddingsAndLossMatchTransformers) {
  torch::NoGradGuard no_grad;
  const std::string path = fixture("sa2va_forward.safetensors");
  vio::SafetensorsFile file(path);
  const vm::Sa2VAConfig config = fixture_config(file, path);
  EXPECT_EQ(config.image_context_token_id, 290);
  EXPECT_EQ(config.seg_token_id, 291);
  vm::Sa2VAVisionLanguage model(config);
  load_weights(*model, path);
  model->eval();

  vm::Sa2VAInputs inputs;
  inputs.pixel_values = file.tensor("input.pixel_values");
  inputs.input_ids = file.tensor("input.input_ids");
  inputs.attention_mask = file.tensor("input.attention_mask");
  inputs.labels = file.tensor("input.labels");
  inputs.masks_per_sample = {1, 2};
  const vm::Sa2VAOutputs out = model->forward(inputs, /*return_logits=*/true);

  EXPECT_TRUE(close(out.prompt_embeddings, file.tensor("output.prompt_embeddings")));
  EXPECT_TRUE(close(out.llm_loss.reshape({1}), file.tensor("output.llm_loss")));
  const at::Tensor valid = inputs.attention_mask.to(at::kBool);
  EXPECT_TRUE(close(out.hidden.index({valid}), file.tensor("output.hidden").index({valid})));
  EXPECT_TRUE(close(out.logits.index({valid}), file.tensor("output.logits").index({valid})));
  EXPECT_TRUE(at::equal(out.seg_sample_index, at::tensor(std::vector<int64_t>{0, 1, 1})));
}

TEST(Parity, CheckpointThatDisagreesWithTheConfigIsReportedByName) {
  vm::Sa2VAConfig config = vm::testing::small_config();
  config.llm.hidden_size = 64;
  config.llm.intermediate_size = 96;  // the fixture's is 128
  vm::Sa2VAVisionLanguage model(config);
  vio::LoadOptions options;
  options.strict = false;
  const auto report =
      vio::load_into(*model, vio::Checkpoint(fixture("sa2va_forward.safetensors")), options);
  // Entries read "key: checkpoint [a, b] vs model [c, d]".
  EXPECT_TRUE(std::any_of(report.mismatched.begin(), report.mismatched.end(), [](const std::string& entry) {
    return entry.rfind("language_model.model.layers.0.mlp.gate_proj.weight: checkpoint [128, 64] vs model [96, 64]", 0) == 0;
  })) << report.describe();
}
