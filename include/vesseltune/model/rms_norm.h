#pragma once
// RMSNorm as Qwen2 and InternViT write it: computed in fp32, scaled by the weight in the input's dtype,
//   y = weight · (x / sqrt(mean(x²) + eps)).to(dtype(x))
// (compat::rms_norm: one fused kernel on LibTorch 2.x, which rounds once at the end.) Key: "weight".

#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

namespace vesseltune::model {

class RMSNormImpl : public torch::nn::Module {
 public:
  RMSNormImpl(int64_t size, double eps);
  at::Tensor forward(const at::Tensor& x);

  at::Tensor weight;

 private:
  double eps_;
};
TORCH_MODULE(RMSNorm);

}  // namespace vesseltune::model
