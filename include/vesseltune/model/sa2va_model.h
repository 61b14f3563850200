#pragma once
// The whole Sa2VA model: the vision-language half (vision_model, mlp1, language_model, text_hidden_fcs) plus
// `grounding_encoder.sam2_model`, under exactly the checkpoint's top-level names (the half is the base class,
// so its keys stay unprefixed). One forward gives the three losses and the masks:
//   tiles + tokens → LLM → llm_loss, [SEG] prompt embeddings [n, 256] (sample order)
//   SAM2 images [B, 3, 1024, 1024] → features once per image, repeated per [SEG] → best-IoU logits [n, 256, 256]
//   ground-truth masks nearest-resized to 256² → loss_mask, loss_dice (+ loss_cldice) → total
// Inference has two roads to the same masks: predict() for [SEG]s already in the input (a teacher-forced answer),
// generate() for the [SEG]s the model writes itself (greedy decoding, as Sa2VA's predict_forward).

#include <ATen/ATen.h>
#include <torch/nn/pimpl.h>

#include "vesseltune/model/greedy_generation.h"
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

// Masks of [SEG] tokens: best-IoU low-resolution logits [n, 4h, 4w] float32, in sample order, and how many of them
// belong to each sample.
struct SegMasks {
  at::Tensor logits;
  std::vector<int64_t> per_sample;
};

// Generation prompts: the chat template's instruction with the image, left-padded.
struct Sa2VAPrompts {
  at::Tensor pixel_values;    // every sample's tiles, in sample order
  at::Tensor input_ids;       // [B, T] int64, left-padded
  at::Tensor attention_mask;  // [B, T], 1 = token, 0 = padding; undefined: no padding
  at::Tensor sam_images;      // [B, 3, S, S] normalised
};

struct Sa2VAAnswers {
  std::vector<std::vector<int64_t>> tokens;  // generated ids per sample (the stopping token included)
  SegMasks masks;                            // one per generated [SEG] that was fed back (Sa2VA's rule)
  std::vector<int64_t> unfed_seg;            // per sample: a final [SEG] cut off by max_new_tokens (0 or 1)
};

class Sa2VAModelImpl : public Sa2VAVisionLanguageImpl {
 public:
  Sa2VAModelImpl(const Sa2VAConfig& config, const sam2::Sam2Config& sam2_config,
                 const MaskLossOptions& loss_options = MaskLossOptions{});
  Sa2VAStepOutput forward(const Sa2VABatch& batch);
  // The masks of the [SEG] tokens in INPUTS (no labels or ground truth needed, no losses).
  SegMasks predict(const Sa2VAInputs& inputs, const at::Tensor& sam_images);
  // Greedy answers to PROMPTS and a mask for each [SEG] they contain: the final hidden state at that [SEG] →
  // text_hidden_fcs → SAM2 on the sample's image.
  Sa2VAAnswers generate(const Sa2VAPrompts& prompts, const GreedyOptions& options);

  sam2::GroundingEncoder grounding_encoder{nullptr};

 private:
  SegMasks segment(const at::Tensor& sam_images, const at::Tensor& prompt_embeddings, std::vector<int64_t> per_sample);

  MaskLossOptions loss_options_;
};
TORCH_MODULE(Sa2VAModel);

}  // namespace vesseltune::model
