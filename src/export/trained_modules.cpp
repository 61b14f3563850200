#include "vesseltune/export/trained_modules.h"

#include "vesseltune/export/merged_weights.h"

namespace vesseltune::exporting {

std::vector<std::pair<std::string, at::Tensor>> trained_modules(const torch::nn::Module& model, const WeightDtypes& dtypes) {
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    const std::string& key = item.key();
    if (item.value().requires_grad() && !is_adapter_tensor(key)) {
      tensors.emplace_back(key, dtypes.convert(key, item.value().detach()));
    }
  }
  return tensors;
}

}  // namespace vesseltune::exporting
