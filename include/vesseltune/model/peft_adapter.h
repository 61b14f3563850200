#pragma once
// LoRA adapters in PEFT's file format, so that Python's PeftModel.from_pretrained loads them onto a model
// with the same layer keys (and vesseltune loads adapters trained with PEFT):
//   adapter_config.json         peft_type LORA, r, lora_alpha, lora_dropout, target_modules, ...
//   adapter_model.safetensors   "base_model.model.<layer key>.lora_A.weight" [r, in] and ".lora_B.weight" [out, r]
// Fully trained modules (embeddings, lm_head, mlp1, text_hidden_fcs, the mask decoder) are not adapters:
// they are saved with the model's own keys.

#include <torch/nn/module.h>

#include <string>

#include "vesseltune/model/config.h"

namespace vesseltune::model {

// PEFT's prefix of every adapter key in adapter_model.safetensors.
inline constexpr const char* kPeftKeyPrefix = "base_model.model.";

// Writes adapter_config.json and adapter_model.safetensors into `directory` (created if needed); the
// tensors in their current dtype. `base_model` goes into base_model_name_or_path.
void save_peft_adapter(const torch::nn::Module& model, const LoraConfig& config, const std::string& directory,
                       const std::string& base_model = "");

// Reads the config written by PEFT (or save_peft_adapter) from `directory`.
LoraConfig read_peft_config(const std::string& directory);

// Copies adapter_model.safetensors into the model's adapters (which must exist, with the file's r); every
// adapter must be in the file and every tensor of the file must have an adapter, else throws naming them.
void load_peft_adapter(torch::nn::Module& model, const std::string& directory);

}  // namespace vesseltune::model
