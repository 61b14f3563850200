#pragma once
// The weights of a merged export, in Sa2VA's checkpoint layout (the names, shapes and order of the model's keys,
// which are the official checkpoint's): every LoRA adapter folded into its base weight (W + alpha/r · B·A, in
// fp32), the adapters' own lora_A / lora_B tensors left out, then every tensor of the base checkpoint that the
// model lacks (SAM2's memory modules, which image-only training never builds) copied through unchanged.

#include <torch/nn/module.h>

#include <string>
#include <utility>
#include <vector>

#include "vesseltune/export/weight_dtypes.h"

namespace vesseltune::exporting {

// Merges MODEL's adapters in place, then returns its parameters and buffers and the base's other tensors
// (DTYPES.base), each in the dtype DTYPES gives it. Tensors of the base may view its files: keep it open.
std::vector<std::pair<std::string, at::Tensor>> merged_weights(torch::nn::Module& model, const WeightDtypes& dtypes);

// Whether KEY is a LoRA adapter's own tensor (".lora_A." / ".lora_B."), which merged weights leave out.
bool is_adapter_tensor(const std::string& key);

}  // namespace vesseltune::exporting
