#pragma once
// LoRA fine-tuning set-up over any module built from LoraLinear layers (Sa2VA: the LLM's q, k, v, o, gate,
// up, down projections): adding adapters, choosing what trains, merging. Adapter files: peft_adapter.h.

#include <torch/nn/module.h>

#include <string>
#include <vector>

#include "vesseltune/model/config.h"

namespace vesseltune::model {

// Adds an adapter (r, alpha, dropout) to every LoraLinear whose key starts with config.scope and whose last
// key component is in config.target_modules. Returns the adapted layers' keys; throws when none matched.
std::vector<std::string> apply_lora(torch::nn::Module& model, const LoraConfig& config);

// Freezes everything (requires_grad false: no gradient is computed or stored), then unfreezes the LoRA
// adapters and every parameter under one of the trainable prefixes (a key equal to the prefix or below it).
// Returns the trainable parameters' keys. Prefixes the model does not have are skipped.
std::vector<std::string> set_trainable(torch::nn::Module& model, const std::vector<std::string>& trainable_prefixes);

// Merge / unmerge every adapter of the model (see LoraLinearImpl::merge).
void merge_lora(torch::nn::Module& model);
void unmerge_lora(torch::nn::Module& model);

}  // namespace vesseltune::model
