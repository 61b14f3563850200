#include "vesseltune/export/merged_weights.h"

#include <torch/torch.h>

#include <set>

#include "vesseltune/model/lora.h"

namespace vesseltune::exporting {

bool is_adapter_tensor(const std::string& key) {
  return key.find(".lora_A.") != std::string::npos || key.find(".lora_B.") != std::string::npos;
}

std::vector<std::pair<std::string, at::Tensor>> merged_weights(torch::nn::Module& model, const WeightDtypes& dtypes) {
  model::merge_lora(model);
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  std::set<std::string> names;
  auto add = [&](const std::string& name, const at::Tensor& tensor) {
    if (is_adapter_tensor(name)) return;
    tensors.emplace_back(name, dtypes.convert(name, tensor.detach()));
    names.insert(name);
  };
  for (const auto& item : model.named_parameters(/*recurse=*/true)) add(item.key(), item.value());
  for (const auto& item : model.named_buffers(/*recurse=*/true)) add(item.key(), item.value());
  if (dtypes.base != nullptr) {
    for (const io::TensorInfo& info : dtypes.base->tensors()) {
      if (!names.count(info.name)) tensors.emplace_back(info.name, dtypes.convert(info.name, dtypes.base->view(info.name)));
    }
  }
  return tensors;
}

}  // namespace vesseltune::exporting
