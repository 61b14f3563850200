#pragma once
// SAM2's MLP: `layers.0 … layers.{n-1}` linear layers with an activation between them (not after the
// last), optionally a sigmoid on the output. Used by the Hiera blocks (GELU), the two-way transformer,
// the hypernetworks, the IoU head and the object-score head (ReLU).

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/pimpl.h>

namespace vesseltune::model::sam2 {

enum class Activation { relu, gelu };

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t input_dim, int64_t hidden_dim, int64_t output_dim, int64_t num_layers, Activation activation,
          bool sigmoid_output = false);
  at::Tensor forward(const at::Tensor& x);

 private:
  torch::nn::ModuleList layers_;
  Activation activation_;
  bool sigmoid_output_;
};
TORCH_MODULE(Mlp);

}  // namespace vesseltune::model::sam2
