#pragma once
// The PEFT export's second file: what training changed besides the LoRA adapters. Sa2VA trains the token
// embeddings, lm_head, mlp1, text_hidden_fcs and SAM2's mask decoder in full; PEFT's adapter file holds only
// lora_A / lora_B, so these go into trained_modules.safetensors under the model's (= the checkpoint's) keys.

#include <torch/nn/module.h>

#include <string>
#include <utility>
#include <vector>

#include "vesseltune/export/weight_dtypes.h"

namespace vesseltune::exporting {

inline constexpr const char* kTrainedModulesFile = "trained_modules.safetensors";

// MODEL's trainable parameters (requires_grad, as training set them) except the LoRA adapters, each in the dtype
// DTYPES gives it.
std::vector<std::pair<std::string, at::Tensor>> trained_modules(const torch::nn::Module& model, const WeightDtypes& dtypes);

}  // namespace vesseltune::exporting
