#pragma once
// Layer norm over the channel dimension of [B, C, H, W] maps (SAM2's LayerNorm2d, eps 1e-6), with
// `weight` and `bias` of shape [C].

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

namespace vesseltune::model::sam2 {

class LayerNorm2dImpl : public torch::nn::Module {
 public:
  explicit LayerNorm2dImpl(int64_t channels, double eps = 1e-6);
  at::Tensor forward(const at::Tensor& x);

 private:
  at::Tensor weight_, bias_;
  double eps_;
};
TORCH_MODULE(LayerNorm2d);

}  // namespace vesseltune::model::sam2
