// The whole Sa2VA model (vision-language half + SAM2 grounding encoder) on the CPU: one forward gives the
// three losses; backward reaches exactly the trainable set (LoRA, embed_tokens, lm_head, mlp1,
// text_hidden_fcs, the SAM2 mask decoder) and nothing else; LoRA and decoder gradients agree with central
// finite differences in double precision.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <set>

#include "test_support.h"
#include "vesseltune/model/lora.h"
#include "vesseltune/model/sa2va_model.h"
#include "vesseltune/model/sam2/sam2_config.h"

namespace vm = vesseltune::model;
using vm::testing::inputs_of;
using vm::testing::randomize_lora_b;

namespace {

// The small vision-language config with the tiny SAM2 (Sa2VAModel sizes the prompts for its decoder).
vm::Sa2VAModel make_model(const vm::MaskLossOptions& losses) {
  torch::manual_seed(5);
  vm::Sa2VAConfig config = vm::testing::small_config();
  const vm::sam2::Sam2Config sam2 = vm::sam2::sam2_preset("tiny");
  vm::Sa2VAModel model(config, sam2, losses);
  vm::apply_lora(*model, config.lora);
  randomize_lora_b(*model);
  vm::set_trainable(*model, config.trainable_modules);
  return model;
}

vm::Sa2VABatch make_batch(int64_t sam_size) {
  torch::manual_seed(11);
  vm::Sa2VABatch batch;
  batch.inputs = inputs_of(vm::testing::small_batch());  // [SEG]: one in sample 0, two in sample 1
  batch.inputs.masks_per_sample = {1, 2};
  batch.sam_images = torch::randn({2, 3, sam_size, sam_size});
  batch.masks = (torch::rand({3, 40, 50}) > 0.7).to(torch::kFloat);
  return batch;
}

bool trained_by_sa2va(const std::string& key) {
  return key.find(".lora_A.") != std::string::npos || key.find(".lora_B.") != std::string::npos ||
         key.rfind("language_model.model.embed_tokens.", 0) == 0 || key.rfind("language_model.lm_head.", 0) == 0 ||
         key.rfind("mlp1.", 0) == 0 || key.rfind("text_hidden_fcs.", 0) == 0 ||
         key.rfind("grounding_encoder.sam2_model.sam_mask_decoder.", 0) == 0;
}

TEST(Sa2VAModel, BackwardReachesExactlyTheTrainableSet) {
  vm::Sa2VAModel model = make_model(vm::MaskLossOptions{});
  const auto out = model->forward(make_batch(vm::sam2::sam2_preset("tiny").image_size));
  for (const auto* loss : {&out.llm_loss, &out.loss_mask, &out.loss_dice, &out.total}) {
    ASSERT_TRUE(loss->defined() && torch::isfinite(*loss).item<bool>());
  }
  EXPECT_NEAR(out.total.item<double>(), (out.llm_loss + out.loss_mask + out.loss_dice + out.loss_cldice).item<double>(), 1e-6);
  EXPECT_EQ(out.mask_logits.sizes(), (std::vector<int64_t>{3, 32, 32}));  // 4x the 128/16 feature map
  out.total.backward();

  // Every trainable tensor of the language side gets a gradient; in the mask decoder the heads that only
  // choose (IoU head: best-mask pick, object-score head, the unpicked masks' hypernetworks) get none from the
  // losses in Sa2VA either, so the decoder is checked as a whole. Nothing frozen gets a gradient.
  int trainable = 0;
  double decoder_gradient = 0;
  for (const auto& item : model->named_parameters()) {
    const bool expected = trained_by_sa2va(item.key());
    EXPECT_EQ(item.value().requires_grad(), expected) << item.key();
    const at::Tensor& grad = item.value().grad();
    const double size = grad.defined() ? grad.abs().sum().item<double>() : 0.0;
    if (!expected) {
      EXPECT_EQ(size, 0.0) << item.key() << " is frozen but got a gradient";
    } else if (item.key().rfind("grounding_encoder.", 0) == 0) {
      decoder_gradient += size;
    } else {
      EXPECT_GT(size, 0.0) << item.key() << " is trainable but got no gradient";
    }
    trainable += expected;
  }
  EXPECT_GT(decoder_gradient, 0.0);
  EXPECT_GT(trainable, 10);
}

// Central differences on single elements of a few trainable tensors, in double precision. The dense loss (no
// point sampling) keeps the loss a smooth function of the parameters; the sampled loss picks its points by
// uncertainty, which a perturbation can change.
TEST(Sa2VAModel, GradientsMatchFiniteDifferencesInDouble) {
  vm::MaskLossOptions dense;
  dense.dense = true;
  vm::Sa2VAModel model = make_model(dense);
  model->to(torch::kDouble);
  vm::Sa2VABatch batch = make_batch(vm::sam2::sam2_preset("tiny").image_size);
  batch.inputs.pixel_values = batch.inputs.pixel_values.to(torch::kDouble);
  batch.sam_images = batch.sam_images.to(torch::kDouble);
  batch.masks = batch.masks.to(torch::kDouble);
  auto loss = [&] { return model->forward(batch).total; };

  loss().backward();
  const auto parameters = model->named_parameters();
  const std::vector<std::string> probes = {
      "language_model.model.layers.0.self_attn.q_proj.lora_A.weight",
      "language_model.model.layers.1.mlp.down_proj.lora_B.weight",
      "text_hidden_fcs.2.weight",
      "grounding_encoder.sam2_model.sam_mask_decoder.output_hypernetworks_mlps.0.layers.2.weight",
      "grounding_encoder.sam2_model.sam_mask_decoder.transformer.layers.0.self_attn.q_proj.weight",
  };
  torch::NoGradGuard no_grad;
  for (const auto& name : probes) {
    ASSERT_TRUE(parameters.contains(name)) << name;
    at::Tensor p = parameters[name];
    const at::Tensor grad = p.grad().flatten();
    const int64_t index = grad.abs().argmax().item<int64_t>();  // the most sensitive element
    at::Tensor flat = p.view({-1});
    const double original = flat[index].item<double>(), h = 1e-5;
    flat[index].fill_(original + h);
    const double up = loss().item<double>();
    flat[index].fill_(original - h);
    const double down = loss().item<double>();
    flat[index].fill_(original);
    const double numeric = (up - down) / (2 * h);
    const double analytic = grad[index].item<double>();
    EXPECT_NEAR(analytic, numeric, 1e-6 + 1e-4 * std::abs(numeric)) << name << "[" << index << "]";
  }
}

}  // namespace
