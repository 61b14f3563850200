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

SegMasks Sa2VAModelImpl::segment(const at::Tensor& sam_images, const at::Tensor& prompt_embeddings,
                                 std::vector<int64_t> per_sample) {
  RECORD_USER_SCOPE("vesseltune::sam2");  // named in profiles (vesseltune-train --profile)
  sam2::LanguagePromptedMasks masks =
      grounding_encoder->forward(sam_images, prompt_embeddings, per_sample, config().object_score_gate);
  return {masks.best_mask_logits, std::move(per_sample)};
}

SegMasks Sa2VAModelImpl::predict(const Sa2VAInputs& inputs, const at::Tensor& sam_images) {
  Sa2VAInputs unlabelled = inputs;
  unlabelled.labels = at::Tensor();
  const Sa2VAOutputs language = Sa2VAVisionLanguageImpl::forward(unlabelled);
  const at::Tensor counts = at::bincount(language.seg_sample_index.cpu(), {}, inputs.input_ids.size(0));
  return segment(sam_images, language.prompt_embeddings,
                 std::vector<int64_t>(counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + counts.numel()));
}

Sa2VAAnswers Sa2VAModelImpl::generate(const Sa2VAPrompts& prompts, const GreedyOptions& options) {
  const at::Tensor embeds = embed_inputs(prompts.input_ids, prompts.pixel_values);
  const GreedyOutput greedy = greedy_generate(*language_model, embeds, prompts.attention_mask, options);
  Sa2VAAnswers answers;
  answers.tokens = greedy.tokens;
  std::vector<at::Tensor> seg_hidden;
  for (size_t b = 0; b < greedy.tokens.size(); ++b) {
    int64_t count = 0, unfed = 0;
    for (size_t j = 0; j < greedy.tokens[b].size(); ++j) {
      if (greedy.tokens[b][j] != config().seg_token_id) continue;
      at::Tensor hidden = greedy.hidden_after(static_cast<int64_t>(b), static_cast<int64_t>(j));
      if (hidden.defined()) {
        seg_hidden.push_back(hidden);
        ++count;
      } else {
        ++unfed;
      }
    }
    answers.masks.per_sample.push_back(count);
    answers.unfed_seg.push_back(unfed);
  }
  if (seg_hidden.empty()) {
    const int64_t size = grounding_encoder->sam2_model()->config().low_res_mask_size();
    answers.masks.logits = at::empty({0, size, size}, embeds.options().dtype(at::kFloat));
    return answers;
  }
  answers.masks = segment(prompts.sam_images, text_hidden_fcs->forward(at::stack(seg_hidden)),
                          std::move(answers.masks.per_sample));
  return answers;
}

Sa2VAStepOutput Sa2VAModelImpl::forward(const Sa2VABatch& batch) {
  const std::vector<int64_t>& per_sample = batch.inputs.masks_per_sample;
  VT_CHECK(!per_sample.empty() && batch.masks.defined(), "Sa2VA step: masks and masks_per_sample are required");
  Sa2VAOutputs language = Sa2VAVisionLanguageImpl::forward(batch.inputs);  // checks [SEG] counts = masks
  const SegMasks masks = segment(batch.sam_images, language.prompt_embeddings, per_sample);

  RECORD_USER_SCOPE("vesseltune::mask_losses");
  const int64_t size = masks.logits.size(-1);
  at::Tensor targets = resize_masks_nearest(batch.masks, size);
  at::Tensor fov = batch.fov.defined() ? resize_masks_nearest(batch.fov, size) : at::Tensor();
  MaskLosses losses = sa2va_mask_losses(masks.logits, targets, loss_options_, fov);

  Sa2VAStepOutput out;
  out.llm_loss = language.llm_loss.defined() ? language.llm_loss : at::zeros({}, losses.loss_mask.options());
  out.loss_mask = losses.loss_mask;
  out.loss_dice = losses.loss_dice;
  out.loss_cldice = losses.loss_cldice;
  out.total = out.llm_loss + losses.total();
  out.mask_logits = masks.logits;
  return out;
}

}  // namespace vesseltune::model
