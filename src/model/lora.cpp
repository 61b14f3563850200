#include "vesseltune/model/lora.h"

#include <torch/torch.h>

#include <algorithm>

#include "vesseltune/core/check.h"
#include "vesseltune/model/lora_linear.h"

namespace vesseltune::model {
namespace {

bool under_prefix(const std::string& key, const std::string& prefix) {
  return key == prefix || (key.size() > prefix.size() && key.compare(0, prefix.size(), prefix) == 0 &&
                           key[prefix.size()] == '.');
}

std::string last_component(const std::string& key) {
  const size_t dot = key.rfind('.');
  return dot == std::string::npos ? key : key.substr(dot + 1);
}

// Every LoraLinear of the model with its key.
std::vector<std::pair<std::string, std::shared_ptr<LoraLinearImpl>>> lora_linears(const torch::nn::Module& model) {
  std::vector<std::pair<std::string, std::shared_ptr<LoraLinearImpl>>> found;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    if (auto layer = std::dynamic_pointer_cast<LoraLinearImpl>(item.value())) found.emplace_back(item.key(), layer);
  }
  return found;
}

}  // namespace

std::vector<std::string> apply_lora(torch::nn::Module& model, const LoraConfig& config) {
  VT_CHECK(!config.target_modules.empty(), "LoRA: no target modules given");
  const LoraSettings settings{config.r, config.alpha, config.dropout};
  std::vector<std::string> adapted;
  for (auto& [key, layer] : lora_linears(model)) {
    if (key.compare(0, config.scope.size(), config.scope) != 0) continue;
    const std::string name = last_component(key);
    if (std::find(config.target_modules.begin(), config.target_modules.end(), name) == config.target_modules.end()) {
      continue;
    }
    layer->add_lora(settings);
    adapted.push_back(key);
  }
  VT_CHECK(!adapted.empty(), "LoRA: no Linear layer under '", config.scope, "' is named one of the target modules");
  return adapted;
}

std::vector<std::string> set_trainable(torch::nn::Module& model, const std::vector<std::string>& trainable_prefixes) {
  std::vector<std::string> trainable;
  for (auto& item : model.named_parameters(/*recurse=*/true)) {
    const std::string& key = item.key();
    bool train = key.find(".lora_A.") != std::string::npos || key.find(".lora_B.") != std::string::npos ||
                 std::any_of(trainable_prefixes.begin(), trainable_prefixes.end(),
                             [&](const std::string& prefix) { return under_prefix(key, prefix); });
    item.value().set_requires_grad(train);
    if (train) trainable.push_back(key);
  }
  return trainable;
}

void merge_lora(torch::nn::Module& model) {
  for (auto& [key, layer] : lora_linears(model)) {
    if (layer->has_lora()) layer->merge();
  }
}

void unmerge_lora(torch::nn::Module& model) {
  for (auto& [key, layer] : lora_linears(model)) {
    if (layer->has_lora()) layer->unmerge();
  }
}

}  // namespace vesseltune::model
