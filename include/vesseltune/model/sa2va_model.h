#pragma once
// The whole Sa2VA model: the vision-language half (vision_model, mlp1, language_model, text_hidden_fcs) plus
// `grounding_encoder.sam2_model`, under exactly the checkpoint's top-level names (the half is the base class,
// so its keys stay unprefixed). One forward gives the three losses and the masks:
//   tiles + tokens → LLM → llm_loss, [SEG] prompt embeddings [n, 256] (sample order)
//   SAM2 images [B, 3, 1024, 1024] → features once per image, repeated per [SEG] → best-IoU logits [n, 256, 256]
//   ground-truth masks nearest-resized to 256² → loss_mask, loss_dice (+ loss_cldice) → total

#include <ATen/ATen.h>
#include <torch/nn/pimpl.h>

#include "vesseltune/model/sa2va_losses.h"
#include "vesseltune/model/sa2va_vision_language.h"
#include "vesseltune/model/sam2/grounding_encoder.h"

namespace vesseltune::model {

struct Sa2VABatch {
  Sa2VAInputs inputs;     // inputs.masks_per_sample: ground-truth masks (= [SEG] tokens) per sample
  at::Tensor sam_images;  // [B, 3, S, S] normalised, one per sample
  at::Tensor masks;       // [n, H, W] 0/1 ground truth, samples' masks in order (any H, W)
  at::Tensor fov;         // [n, H, W] 0/1 field of view, or undefined (used only when the losses ask for it)
};

struct Sa2VAStepOutput {
  at::Tensor llm_loss, loss_mask, loss_dice, loss_cldice;
  at::Tensor total;        // llm_loss + loss_mask + loss_dice + loss_cldice
  at::Tensor mask_logits;  // [n, 4h, 4w] float32 (256² at 1024)
};

class Sa2VAModelImpl : public Sa2VAVisionLanguageImpl {
 public:
  Sa2VAModelImpl(const Sa2VAConfig& config, const sam2::Sam2Config& sam2_config,
                 const MaskLossOptions& loss_options = MaskLossOptions{});
  Sa2VAStepOutput forward(const Sa2VABatch& batch);

  sam2::GroundingEncoder grounding_encoder{nullptr};

 private:
  MaskLossOptions loss_options_;
};
TORCH_MODULE(Sa2VAModel);

}  // namespace vesseltune::model
