#include "vesseltune/model/projector.h"

#include <torch/torch.h>

#include <cmath>

#include "vesseltune/core/check.h"

namespace vesseltune::model {

at::Tensor pixel_shuffle(const at::Tensor& vit_hidden, double scale, const std::string& version) {
  const int64_t n = vit_hidden.size(0), c = vit_hidden.size(2), patches = vit_hidden.size(1) - 1;
  const auto side = static_cast<int64_t>(std::llround(std::sqrt(static_cast<double>(patches))));
  VT_CHECK(side * side == patches, "pixel shuffle: ", patches, " patches do not form a square grid");
  const auto factor = static_cast<int64_t>(std::llround(1.0 / scale));
  VT_CHECK(side % factor == 0, "pixel shuffle: grid side ", side, " is not a multiple of ", factor);
  const int64_t small = side / factor;
  // InternVL's steps on [n, w, h, c]: fold pairs of columns into channels, transpose, fold pairs of rows.
  at::Tensor x = vit_hidden.slice(1, 1).reshape({n, side, side, c});
  x = x.reshape({n, side, small, c * factor}).permute({0, 2, 1, 3}).contiguous();
  x = x.reshape({n, small, small, c * factor * factor});
  if (version == "v2") x = x.permute({0, 2, 1, 3}).contiguous();
  return x.reshape({n, small * small, c * factor * factor});
}

torch::nn::Sequential make_mlp1(int64_t shuffled_vision_size, int64_t llm_hidden_size) {
  return torch::nn::Sequential(
      torch::nn::LayerNorm(torch::nn::LayerNormOptions({shuffled_vision_size}).eps(1e-5)),
      torch::nn::Linear(shuffled_vision_size, llm_hidden_size),
      torch::nn::GELU(),
      torch::nn::Linear(llm_hidden_size, llm_hidden_size));
}

}  // namespace vesseltune::model
