// PEFT adapter files: what save_peft_adapter writes (names, config) and that load_peft_adapter restores the
// adapters exactly. That Python's peft loads them is checked on the GPU machine (check_peft_adapter.py).
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "test_support.h"
#include "vesseltune/core/remove_tree.h"
#include "vesseltune/core/check.h"
#include "vesseltune/io/safetensors.h"
#include "vesseltune/model/lora.h"
#include "vesseltune/model/peft_adapter.h"
#include "vesseltune/model/sa2va_vision_language.h"

namespace vm = vesseltune::model;
using vm::testing::close;
using vm::testing::inputs_of;
using vm::testing::randomize_lora_b;

TEST(PeftAdapter, FilesRoundTrip) {
  torch::manual_seed(3);
  torch::NoGradGuard no_grad;
  const vm::Sa2VAConfig config = vm::testing::small_config();
  vm::Sa2VAVisionLanguage model(config);
  vm::apply_lora(*model, config.lora);
  randomize_lora_b(*model);
  model->eval();
  const auto batch = vm::testing::small_batch();
  const at::Tensor expected = model->forward(inputs_of(batch), true).logits;

  const std::string dir = (std::filesystem::temp_directory_path() / "vesseltune_test_peft").string();
  vesseltune::remove_tree(dir);
  vm::save_peft_adapter(*model, config.lora, dir, "sa2va-test");

  std::ifstream in(dir + "/adapter_config.json");
  const auto cfg = nlohmann::json::parse(in);
  EXPECT_EQ(cfg["peft_type"], "LORA");
  EXPECT_EQ(cfg["r"], config.lora.r);
  EXPECT_EQ(cfg["lora_alpha"], config.lora.alpha);
  EXPECT_EQ(cfg["target_modules"], "language_model\\..*\\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)");
  vesseltune::io::SafetensorsFile file(dir + "/adapter_model.safetensors");
  EXPECT_TRUE(file.contains("base_model.model.language_model.model.layers.0.self_attn.q_proj.lora_A.weight"));
  EXPECT_TRUE(file.contains("base_model.model.language_model.model.layers.1.mlp.down_proj.lora_B.weight"));
  EXPECT_EQ(file.tensors().size(), 2u * 7u * static_cast<size_t>(config.llm.num_layers));

  const vm::LoraConfig read = vm::read_peft_config(dir);
  EXPECT_EQ(read.scope, "language_model.");
  EXPECT_EQ(read.target_modules, config.lora.target_modules);

  vm::Sa2VAVisionLanguage fresh(config);
  EXPECT_THROW(vm::load_peft_adapter(*fresh, dir), vesseltune::Error);  // no adapters to load into
  vm::apply_lora(*fresh, read);
  for (auto& p : fresh->named_parameters()) {  // base weights as the original's, adapters from the file
    if (p.key().find(".lora_") == std::string::npos) p.value().copy_(model->named_parameters()[p.key()]);
  }
  vm::load_peft_adapter(*fresh, dir);
  fresh->eval();
  EXPECT_TRUE(close(fresh->forward(inputs_of(batch), true).logits, expected, 1e-6));
  vesseltune::remove_tree(dir);
}
