// The merged weights' layout: a model built from the official config.json (tests/fixtures/sa2va/config_tiny.json)
// with SAM2 hiera-large, LoRA added, gives exactly the official checkpoint's names, dtypes and shapes
// (tests/fixtures/sa2va/sa2va_keys.txt, a copy of ../shared/sa2va/sa2va_keys.txt) except SAM2's memory modules;
// with a base checkpoint, those and anything else the model lacks are copied through unchanged, every tensor keeps
// the base's dtype, and the adapters are folded in as W + alpha/r · B·A.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "test_support.h"
#include "vesseltune/core/remove_tree.h"
#include "vesseltune/export/merged_weights.h"
#include "vesseltune/model/sam2/sam2_model.h"
#include "vesseltune/setup/model_setup.h"

namespace vesseltune::exporting {
namespace {

namespace fs = std::filesystem;
using model::testing::fixture;

struct Layout {
  std::string dtype;
  std::string shape;
};

std::string shape_text(at::IntArrayRef sizes) {
  std::string text = "[";
  for (size_t i = 0; i < sizes.size(); ++i) text += (i ? ", " : "") + std::to_string(sizes[i]);
  return text + "]";
}

setup::TrainConfig tiny_config(std::vector<std::string> overrides) {
  overrides.push_back("model.tokenizer=" + std::string(VESSELTUNE_SOURCE_DIR) + "/configs/tiny/tokenizer.json");
  return setup::TrainConfig::load(std::string(VESSELTUNE_SOURCE_DIR) + "/configs/tiny_vessel.yaml", overrides);
}

// The model as training builds it (random weights from the seed, or the base's; LoRA r 8, alpha 16), with random
// adapters so that merging changes the weights.
model::Sa2VAModel build(const setup::TrainConfig& config, int64_t image_context_id, int64_t seg_id) {
  setup::ModelShapes shapes = setup::model_shapes(config);
  shapes.sa2va.image_context_token_id = image_context_id;  // the tokenizer's ids; not needed for the layout
  shapes.sa2va.seg_token_id = seg_id;
  model::Sa2VAModel net = setup::build_model(shapes, config, at::kCPU, at::kFloat);
  torch::NoGradGuard no_grad;
  torch::manual_seed(7);
  for (auto& item : net->named_parameters()) {
    if (item.key().find(".lora_B.") != std::string::npos) item.value().normal_(0.0, 0.1);
  }
  return net;
}

TEST(MergedLayout, EqualsTheOfficialCheckpointsButTheMemoryModules) {
  std::map<std::string, Layout> expected;
  std::ifstream in(fixture("sa2va/sa2va_keys.txt"));
  int memory_tensors = 0;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string name, dtype, shape;
    std::getline(fields, name, '\t');
    std::getline(fields, dtype, '\t');
    std::getline(fields, shape, '\t');
    bool memory = false;
    for (const std::string& prefix : model::sam2::Sam2ModelImpl::unused_checkpoint_prefixes()) {
      memory = memory || name.rfind("grounding_encoder.sam2_model." + prefix, 0) == 0;
    }
    memory_tensors += memory ? 1 : 0;
    if (!memory) expected[name] = {dtype, shape};
  }
  ASSERT_EQ(expected.size() + memory_tensors, 969u);
  ASSERT_EQ(memory_tensors, 157);

  model::Sa2VAModel net = build(tiny_config({"model.config_json=" + fixture("sa2va/config_tiny.json"),
                                             "model.sam2_preset=hiera-large", "model.sam2_image_size=0"}),
                                151671, 151672);
  const auto merged = merged_weights(*net, WeightDtypes{at::kFloat, nullptr});
  std::map<std::string, Layout> actual;
  for (const auto& [name, tensor] : merged) {
    EXPECT_TRUE(actual.emplace(name, Layout{io::to_safetensors_dtype(tensor.scalar_type()), shape_text(tensor.sizes())}).second)
        << name << " twice";
  }
  ASSERT_EQ(actual.size(), expected.size());
  for (const auto& [name, layout] : expected) {
    const auto found = actual.find(name);
    ASSERT_NE(found, actual.end()) << name << " is missing";
    EXPECT_EQ(found->second.dtype, layout.dtype) << name;
    EXPECT_EQ(found->second.shape, layout.shape) << name;
  }
}

class MergedWithBase : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("vt_merged_base_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    base_path_ = (dir_ / "base.safetensors").string();
    // A base checkpoint of the tiny model as a released one stores it: the LLM in bf16, the rest in fp32, plus a
    // SAM2 memory-module tensor (fp16 here, so that "unchanged" shows) that the model never builds.
    model::Sa2VAModel source = build(tiny_config({}), 2042, 2043);
    std::vector<std::pair<std::string, at::Tensor>> tensors;
    auto add = [&](const std::string& name, const at::Tensor& tensor) {
      if (is_adapter_tensor(name)) return;
      tensors.emplace_back(name, name.rfind("language_model.", 0) == 0 ? tensor.to(at::kBFloat16) : tensor);
    };
    for (const auto& item : source->named_parameters()) add(item.key(), item.value());
    for (const auto& item : source->named_buffers()) add(item.key(), item.value());
    tensors.emplace_back(kExtra, torch::randn({7, 1, 1, 32}).to(at::kHalf));
    io::save_safetensors(base_path_, tensors);
    for (const auto& [name, tensor] : tensors) base_dtypes_[name] = tensor.scalar_type();
  }
  void TearDown() override { remove_tree(dir_.string()); }

  // The tiny model on the base, with random adapters; KEY's W, A and B before merging.
  model::Sa2VAModel build_on_base(at::Tensor& w, at::Tensor& a, at::Tensor& b) const {
    model::Sa2VAModel net = build(tiny_config({"model.weights=" + base_path_}), 2042, 2043);
    const auto parameters = net->named_parameters();
    w = parameters[kAdapted + std::string(".weight")].detach().clone();
    a = parameters[kAdapted + std::string(".lora_A.weight")].detach().clone();
    b = parameters[kAdapted + std::string(".lora_B.weight")].detach().clone();
    return net;
  }

  static constexpr const char* kExtra = "grounding_encoder.sam2_model.maskmem_tpos_enc";
  static constexpr const char* kAdapted = "language_model.model.layers.1.mlp.down_proj";
  fs::path dir_;
  std::string base_path_;
  std::map<std::string, at::ScalarType> base_dtypes_;
};

TEST_F(MergedWithBase, KeepsTheBaseDtypesCopiesWhatTheModelLacksAndMergesTheAdapters) {
  at::Tensor w, a, b;
  model::Sa2VAModel net = build_on_base(w, a, b);
  const io::Checkpoint base(base_path_);
  const auto merged = merged_weights(*net, WeightDtypes{std::nullopt, &base});
  ASSERT_EQ(merged.size(), base_dtypes_.size());
  for (const auto& [name, tensor] : merged) {
    ASSERT_TRUE(base_dtypes_.count(name)) << name << " is not in the base";
    EXPECT_EQ(tensor.scalar_type(), base_dtypes_[name]) << name;
  }
  EXPECT_EQ(merged.back().first, kExtra);
  EXPECT_TRUE(torch::equal(merged.back().second, base.tensor(kExtra)));
  // Every weight without an adapter is the base's, bit for bit (bf16 → fp32 → bf16 is exact).
  const std::string adapted = kAdapted + std::string(".weight");
  for (const auto& [name, tensor] : merged) {
    if (name.find("_proj.weight") == std::string::npos || name.rfind("language_model.", 0) != 0) {
      EXPECT_TRUE(torch::equal(tensor, base.tensor(name))) << name;
    }
  }
  // W + 2 · B·A (alpha 16 / r 8) in double, then stored in the base's bf16: within bf16's rounding.
  const at::Tensor expected = w.to(at::kDouble) + 2.0 * b.to(at::kDouble).mm(a.to(at::kDouble));
  const at::Tensor stored = std::find_if(merged.begin(), merged.end(), [&](const auto& m) { return m.first == adapted; })->second;
  EXPECT_TRUE(model::testing::close(stored, expected, 1.0 / 128));
  EXPECT_GT((expected - w.to(at::kDouble)).abs().max().item<double>(), 0.01);  // the adapter matters
}

TEST_F(MergedWithBase, ARequestedDtypeAppliesToEveryFloatingTensor) {
  at::Tensor w, a, b;
  model::Sa2VAModel net = build_on_base(w, a, b);
  const io::Checkpoint base(base_path_);
  const auto merged = merged_weights(*net, WeightDtypes{at::kFloat, &base});
  ASSERT_EQ(merged.size(), base_dtypes_.size());
  for (const auto& [name, tensor] : merged) EXPECT_EQ(tensor.scalar_type(), at::kFloat) << name;
  const at::Tensor expected = w.to(at::kDouble) + 2.0 * b.to(at::kDouble).mm(a.to(at::kDouble));
  const std::string adapted = kAdapted + std::string(".weight");
  const at::Tensor stored = std::find_if(merged.begin(), merged.end(), [&](const auto& m) { return m.first == adapted; })->second;
  EXPECT_TRUE(model::testing::close(stored, expected, 1e-6));
}

}  // namespace
}  // namespace vesseltune::exporting
