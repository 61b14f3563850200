// LoRA: a new adapter changes nothing, merged and unmerged forwards agree, gradients reach exactly the
// configured trainable set, and adapters survive a PEFT-format save and load.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <set>

#include "test_support.h"
#include "vesseltune/core/check.h"
#include "vesseltune/model/lora.h"
#include "vesseltune/model/lora_linear.h"
#include "vesseltune/model/sa2va_vision_language.h"

namespace vm = vesseltune::model;
using vm::testing::close;

using vm::testing::inputs_of;
using vm::testing::randomize_lora_b;

TEST(Lora, NewAdapterLeavesOutputUnchangedAndMergeAgrees) {
  torch::manual_seed(1);
  torch::NoGradGuard no_grad;
  const vm::Sa2VAConfig config = vm::testing::small_config();
  vm::Sa2VAVisionLanguage model(config);
  model->eval();
  const auto batch = vm::testing::small_batch();
  const at::Tensor before = model->forward(inputs_of(batch), true).logits;

  const auto adapted = vm::apply_lora(*model, config.lora);
  EXPECT_EQ(adapted.size(), static_cast<size_t>(7 * config.llm.num_layers));
  EXPECT_EQ(adapted[0], "language_model.model.layers.0.self_attn.q_proj");
  EXPECT_TRUE(close(model->forward(inputs_of(batch), true).logits, before, 1e-6));

  randomize_lora_b(*model);
  const at::Tensor unmerged = model->forward(inputs_of(batch), true).logits;
  EXPECT_FALSE(close(unmerged, before, 1e-3)) << "the adapter must change the output";
  vm::merge_lora(*model);
  EXPECT_TRUE(close(model->forward(inputs_of(batch), true).logits, unmerged, 1e-5));
  vm::unmerge_lora(*model);
  EXPECT_TRUE(close(model->forward(inputs_of(batch), true).logits, unmerged, 1e-5));
  EXPECT_THROW(vm::unmerge_lora(*model), vesseltune::Error);
}

TEST(Lora, GradientsReachExactlyTheTrainableSet) {
  torch::manual_seed(2);
  const vm::Sa2VAConfig config = vm::testing::small_config();
  vm::Sa2VAVisionLanguage model(config);
  vm::apply_lora(*model, config.lora);
  randomize_lora_b(*model);
  const auto trainable = vm::set_trainable(*model, config.trainable_modules);
  model->train();
  const vm::Sa2VAOutputs out = model->forward(inputs_of(vm::testing::small_batch()));
  (out.llm_loss + out.prompt_embeddings.pow(2).mean()).backward();

  std::set<std::string> expected_prefixes = {"language_model.model.embed_tokens.", "language_model.lm_head.", "mlp1.",
                                             "text_hidden_fcs."};
  size_t lora = 0;
  for (const auto& p : model->named_parameters()) {
    const std::string& key = p.key();
    const bool is_lora = key.find(".lora_A.") != std::string::npos || key.find(".lora_B.") != std::string::npos;
    bool should_train = is_lora;
    for (const auto& prefix : expected_prefixes) should_train |= key.rfind(prefix, 0) == 0;
    lora += is_lora;
    EXPECT_EQ(p.value().requires_grad(), should_train) << key;
    if (should_train) {
      ASSERT_TRUE(p.value().grad().defined()) << key;
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << key;
    } else {
      EXPECT_FALSE(p.value().grad().defined()) << key << " is frozen but has a gradient";
    }
  }
  EXPECT_EQ(lora, 2u * 7u * static_cast<size_t>(config.llm.num_layers));
  EXPECT_EQ(std::count_if(trainable.begin(), trainable.end(), [](const std::string& k) { return k.rfind("mlp1.", 0) == 0; }),
            6);
}
