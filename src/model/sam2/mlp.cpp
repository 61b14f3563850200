#include "vesseltune/model/sam2/mlp.h"

#include <torch/nn/modules/linear.h>

#include "vesseltune/core/check.h"

namespace vesseltune::model::sam2 {

MlpImpl::MlpImpl(int64_t input_dim, int64_t hidden_dim, int64_t output_dim, int64_t num_layers,
                 Activation activation, bool sigmoid_output)
    : activation_(activation), sigmoid_output_(sigmoid_output) {
  VT_CHECK(num_layers >= 1, "MLP needs at least one layer, got ", num_layers);
  layers_ = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < num_layers; ++i) {
    const int64_t in = i == 0 ? input_dim : hidden_dim;
    const int64_t out = i == num_layers - 1 ? output_dim : hidden_dim;
    layers_->push_back(torch::nn::Linear(in, out));
  }
}

at::Tensor MlpImpl::forward(const at::Tensor& x) {
  at::Tensor h = x;
  const size_t n = layers_->size();
  for (size_t i = 0; i < n; ++i) {
    h = layers_[i]->as<torch::nn::Linear>()->forward(h);
    if (i + 1 < n) h = activation_ == Activation::relu ? at::relu(h) : at::gelu(h);
  }
  return sigmoid_output_ ? at::sigmoid(h) : h;
}

}  // namespace vesseltune::model::sam2
