#include "vesseltune/model/sa2va_model.h"

#include <ATen/record_function.h>

#include "vesseltune/core/check.h"

namespace vesseltune::model {
namespace {

// In the whole model text_hidden_fcs feeds SAM2's mask decoder, so its output width is the decoder's (256 for
// the released models, narrower for the tiny test SAM2), whatever the vision-language config says.
Sa2VAConfig with_prompt_width(Sa2VAConfig config, int64_t width) {
  config.prompt_dim = width;
  return config;
}

}  // namespace

Sa2VAModelImpl::Sa2VAModelImpl(const Sa2VAConfig& config, const sam2::Sam2Config& sam2_config,
                               const MaskLossOptions& loss_options)
    : Sa2VAVisionLanguageImpl(with_prompt_width(config, sam2_config.d_model)), loss_options_(loss_options) {
  grounding_encoder = register_module("grounding_encoder", sam2::GroundingEncoder(sam2_config));
}

Sa2VAStepOutput Sa2VAModelImpl::forward(const Sa2VABatch& batch) {
  const std::vector<int64_t>& per_sample = batch.inputs.masks_per_sample;
  VT_CHECK(!per_sample.empty() && batch.masks.defined(), "Sa2VA step: masks and masks_per_sample are required");
  Sa2VAOutputs language = Sa2VAVisionLanguageImpl::forward(batch.inputs);  // checks [SEG] counts = masks
  sam2::LanguagePromptedMasks masks;
  {
    RECORD_USER_SCOPE("vesseltune::sam2");  // named in profiles (vesseltune-train --profile)
    masks = grounding_encoder->forward(batch.sam_images, language.prompt_embeddings, per_sample,
                                       config().object_score_gate);
  }

  RECORD_USER_SCOPE("vesseltune::mask_losses");
  const int64_t size = masks.best_mask_logits.size(-1);
  at::Tensor targets = resize_masks_nearest(batch.masks, size);
  at::Tensor fov = batch.fov.defined() ? resize_masks_nearest(batch.fov, size) : at::Tensor();
  MaskLosses losses = sa2va_mask_losses(masks.best_mask_logits, targets, loss_options_, fov);

  Sa2VAStepOutput out;
  out.llm_loss = language.llm_loss.defined() ? language.llm_loss : at::zeros({}, losses.loss_mask.options());
  out.loss_mask = losses.loss_mask;
  out.loss_dice = losses.loss_dice;
  out.loss_cldice = losses.loss_cldice;
  out.total = out.llm_loss + losses.total();
  out.mask_logits = masks.best_mask_logits;
  return out;
}

}  // namespace vesseltune::model
