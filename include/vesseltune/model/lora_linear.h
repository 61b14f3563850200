#pragma once
// A Linear layer that can carry a LoRA adapter. Its keys are those of torch.nn.Linear ("weight", "bias"),
// so checkpoints load unchanged; with an adapter it also has "lora_A.weight" [r, in] and "lora_B.weight"
// [out, r], which are PEFT's adapter keys without the adapter name:
//   y = x·Wᵀ + b + scale · B·A·dropout(x),   scale = alpha / r
// A starts Kaiming-uniform and B at zero, so a new adapter leaves the output unchanged. Merging folds
// scale·B·A into W (inference, export); unmerging takes it out again.

#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

namespace vesseltune::model {

struct LoraSettings {
  int64_t r = 128;
  double alpha = 256;
  double dropout = 0.05;
};

class LoraLinearImpl : public torch::nn::Module {
 public:
  LoraLinearImpl(int64_t in_features, int64_t out_features, bool bias);

  at::Tensor forward(const at::Tensor& x);

  // Adds the adapter on the weight's device and dtype; throws if there is one already.
  void add_lora(const LoraSettings& settings);
  bool has_lora() const { return static_cast<bool>(lora_A); }
  const LoraSettings& lora_settings() const { return settings_; }
  double lora_scale() const { return settings_.alpha / static_cast<double>(settings_.r); }

  // W += scale·B·A (computed in fp32); the adapter branch is then skipped. Throws without an adapter.
  void merge();
  // W -= scale·B·A.
  void unmerge();
  bool merged() const { return merged_; }

  // nn.Linear's initialisation: W Kaiming-uniform (a = √5), b uniform in ±1/√in.
  void reset_parameters();

  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }

  at::Tensor weight;
  at::Tensor bias;  // undefined without bias
  torch::nn::Linear lora_A{nullptr};
  torch::nn::Linear lora_B{nullptr};

 private:
  at::Tensor delta() const;  // scale·B·A in fp32

  int64_t in_features_;
  int64_t out_features_;
  LoraSettings settings_;
  bool merged_ = false;
};
TORCH_MODULE(LoraLinear);

}  // namespace vesseltune::model
