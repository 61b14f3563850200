#include "vesseltune/model/lora_linear.h"

#include <torch/nn/functional/dropout.h>
#include <torch/nn/init.h>

#include <cmath>

#include "vesseltune/core/check.h"

namespace vesseltune::model {

LoraLinearImpl::LoraLinearImpl(int64_t in_features, int64_t out_features, bool bias)
    : in_features_(in_features), out_features_(out_features) {
  weight = register_parameter("weight", torch::empty({out_features, in_features}));
  if (bias) this->bias = register_parameter("bias", torch::empty({out_features}));
  reset_parameters();
}

void LoraLinearImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (bias.defined()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in_features_));
    bias.uniform_(-bound, bound);
  }
}

void LoraLinearImpl::add_lora(const LoraSettings& settings) {
  VT_CHECK(!has_lora(), "LoRA: this layer [", out_features_, " x ", in_features_, "] has an adapter already");
  VT_CHECK(settings.r > 0, "LoRA: r must be positive, got ", settings.r);
  settings_ = settings;
  auto options = weight.options();
  lora_A = register_module("lora_A", torch::nn::Linear(torch::nn::LinearOptions(in_features_, settings.r).bias(false)));
  lora_B = register_module("lora_B", torch::nn::Linear(torch::nn::LinearOptions(settings.r, out_features_).bias(false)));
  lora_A->to(options.device(), options.dtype().toScalarType());
  lora_B->to(options.device(), options.dtype().toScalarType());
  torch::NoGradGuard no_grad;
  torch::nn::init::kaiming_uniform_(lora_A->weight, std::sqrt(5.0));  // PEFT's init_lora_weights=True
  lora_B->weight.zero_();
}

at::Tensor LoraLinearImpl::delta() const {
  return lora_B->weight.to(at::kFloat).mm(lora_A->weight.to(at::kFloat)) * lora_scale();
}

void LoraLinearImpl::merge() {
  VT_CHECK(has_lora(), "LoRA: merge on a layer without an adapter");
  VT_CHECK(!merged_, "LoRA: adapter merged already");
  torch::NoGradGuard no_grad;
  weight.copy_(weight.to(at::kFloat) + delta());
  merged_ = true;
}

void LoraLinearImpl::unmerge() {
  VT_CHECK(merged_, "LoRA: unmerge on a layer whose adapter is not merged");
  torch::NoGradGuard no_grad;
  weight.copy_(weight.to(at::kFloat) - delta());
  merged_ = false;
}

at::Tensor LoraLinearImpl::forward(const at::Tensor& x) {
  at::Tensor y = at::linear(x, weight, bias);
  if (has_lora() && !merged_) {
    at::Tensor dropped = settings_.dropout > 0 && is_training()
                             ? torch::nn::functional::dropout(
                                   x, torch::nn::functional::DropoutFuncOptions().p(settings_.dropout).training(true))
                             : x;
    // y + scale · B(A(x)) as one addmm on the flattened tokens: fewer operators for the host to issue (the
    // step is bound by that at small batches) than a matmul, a scaling and an addition.
    const at::Tensor down = lora_A(dropped);
    const at::Tensor flat = at::addmm(y.reshape({-1, out_features_}), down.reshape({-1, settings_.r}),
                                      lora_B->weight.t(), /*beta=*/1, /*alpha=*/lora_scale());
    return flat.view(y.sizes());
  }
  return y;
}

}  // namespace vesseltune::model
