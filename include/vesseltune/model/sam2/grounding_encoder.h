#pragma once
// Sa2VA's grounding encoder: SAM2 prompted by the `[SEG]` embeddings. Training: the SAM2 image (resized
// straight to image_size², ImageNet mean/std — data::make_model_inputs builds it) is encoded once, its
// features are repeated for each of the image's prompts, and every prompt yields the low-resolution logits
// (256² at 1024) of its best multimask output in float32 — what the Sa2VA losses compare with the ground
// truth. Inference: those logits bilinearly to image_size², then to the original size, sigmoid > threshold.

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <vector>

#include "vesseltune/model/sam2/sam2_model.h"

namespace vesseltune::model::sam2 {

// Key: sam2_model.
class GroundingEncoderImpl : public torch::nn::Module {
 public:
  explicit GroundingEncoderImpl(const Sam2Config& config);

  // images [I, 3, S, S] normalised; language_embeddings [n, C] (text_hidden_fcs of the [SEG] hidden states, in
  // image order); prompts_per_image: how many of them belong to each image (sum n). → [n, 4h, 4w] float32.
  // gate_by_object_score: see Sam2ModelImpl::segment.
  LanguagePromptedMasks forward(const at::Tensor& images, const at::Tensor& language_embeddings,
                                const std::vector<int64_t>& prompts_per_image, bool gate_by_object_score = false);

  Sam2Model sam2_model() const { return sam2_model_; }

 private:
  Sam2Model sam2_model_{nullptr};
};
TORCH_MODULE(GroundingEncoder);

// Inference, as Sa2VA resizes its predictions: logits [n, h, w] → float32 probabilities [n, height, width], via
// bilinear (align_corners false) resizing to model_size² and then to height×width, then the sigmoid.
at::Tensor probabilities_from_logits(const at::Tensor& logits, int64_t model_size, int64_t height, int64_t width);

}  // namespace vesseltune::model::sam2
