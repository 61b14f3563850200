// Activation checkpointing gives the same loss and the same gradients as the plain backward pass, with
// dropout active (the RNG state is replayed), and reaches parameters when no input requires grad.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "test_support.h"
#include "vesseltune/model/activation_checkpoint.h"
#include "vesseltune/model/lora.h"
#include "vesseltune/model/sa2va_vision_language.h"

namespace vm = vesseltune::model;
using vm::testing::close;

namespace {

struct StepResult {
  at::Tensor loss;
  std::map<std::string, at::Tensor> grads;
};

StepResult train_step(bool checkpointing) {
  torch::manual_seed(11);
  vm::Sa2VAConfig config = vm::testing::small_config();
  config.lora.dropout = 0.3;  // dropout inside every checkpointed layer
  vm::Sa2VAVisionLanguage model(config);
  vm::apply_lora(*model, config.lora);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->named_parameters()) {
      if (p.key().find(".lora_B.") != std::string::npos) p.value().normal_(0.0, 0.1);
    }
  }
  vm::set_trainable(*model, config.trainable_modules);
  // Train the vision encoder too, so its checkpointed layers backpropagate into parameters.
  for (auto& p : model->vision_model->named_parameters()) p.value().set_requires_grad(true);
  model->set_activation_checkpointing(checkpointing);
  model->train();
  const auto batch = vm::testing::small_batch();
  vm::Sa2VAInputs in{batch.pixel_values, batch.input_ids, batch.attention_mask, batch.labels, {}};
  torch::manual_seed(12);
  const vm::Sa2VAOutputs out = model->forward(in);
  const at::Tensor loss = out.llm_loss + out.prompt_embeddings.pow(2).mean();
  loss.backward();
  StepResult run{loss.detach(), {}};
  for (const auto& p : model->named_parameters()) {
    if (p.value().requires_grad()) run.grads[p.key()] = p.value().grad().clone();
  }
  return run;
}

}  // namespace

TEST(ActivationCheckpoint, SameLossAndGradientsAsWithout) {
  const StepResult plain = train_step(false);
  const StepResult checkpointed = train_step(true);
  EXPECT_TRUE(close(checkpointed.loss, plain.loss, 1e-6));
  ASSERT_EQ(plain.grads.size(), checkpointed.grads.size());
  for (const auto& [key, grad] : plain.grads) {
    ASSERT_TRUE(checkpointed.grads.at(key).defined()) << key;
    EXPECT_TRUE(close(checkpointed.grads.at(key), grad, 1e-5)) << key;
  }
}

TEST(ActivationCheckpoint, ParametersGetGradientsWhenNoInputRequiresGrad) {
  torch::manual_seed(13);
  torch::nn::Linear layer(4, 3);
  const at::Tensor x = torch::randn({2, 4});  // requires no grad
  vm::checkpoint([impl = layer.ptr()](const at::Tensor& input) { return impl->forward(input).tanh(); }, x).sum().backward();
  const at::Tensor with_checkpoint = layer->weight.grad().clone();
  layer->weight.mutable_grad().zero_();
  layer(x).tanh().sum().backward();
  EXPECT_TRUE(close(with_checkpoint, layer->weight.grad(), 1e-6));
}

TEST(ActivationCheckpoint, InputGradientsAndNoGradMode) {
  const at::Tensor x = torch::randn({3, 5}).requires_grad_(true);
  const auto outs = vm::checkpoint([](const std::vector<at::Tensor>& in) { return std::vector<at::Tensor>{in[0].sin() * in[1]}; },
                                   {x, torch::full({3, 5}, 2.0)});
  outs[0].sum().backward();
  EXPECT_TRUE(close(x.grad(), 2.0 * x.detach().cos(), 1e-6));
  torch::NoGradGuard no_grad;
  EXPECT_FALSE(vm::checkpoint([](const at::Tensor& in) { return in * 2; }, x).requires_grad());
}
