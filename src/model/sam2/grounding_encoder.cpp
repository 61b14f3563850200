#include "vesseltune/model/sam2/grounding_encoder.h"

#include <numeric>

#include "vesseltune/core/check.h"
#include "vesseltune/model/precision.h"

namespace vesseltune::model::sam2 {

GroundingEncoderImpl::GroundingEncoderImpl(const Sam2Config& config) {
  sam2_model_ = register_module("sam2_model", Sam2Model(config));
}

LanguagePromptedMasks GroundingEncoderImpl::forward(const at::Tensor& images, const at::Tensor& language_embeddings,
                                                    const std::vector<int64_t>& prompts_per_image,
                                                    bool gate_by_object_score) {
  VT_CHECK(images.dim() == 4 && images.size(0) == static_cast<int64_t>(prompts_per_image.size()),
           "grounding encoder: images ", images.sizes(), " with prompt counts for ", prompts_per_image.size(),
           " images");
  const int64_t total = std::accumulate(prompts_per_image.begin(), prompts_per_image.end(), int64_t{0});
  VT_CHECK(language_embeddings.size(0) == total, "grounding encoder: ", language_embeddings.size(0),
           " [SEG] embeddings but the prompt counts add up to ", total);
  ImageFeatures per_image = sam2_model_->encode_image(images);
  return sam2_model_->segment(per_image.repeat_per_prompt(prompts_per_image), language_embeddings,
                              gate_by_object_score);
}

at::Tensor probabilities_from_logits(const at::Tensor& logits, int64_t model_size, int64_t height, int64_t width) {
  VT_CHECK(logits.dim() == 3, "probabilities_from_logits: logits must be [n, h, w], got ", logits.sizes());
  at::Tensor x = at_least_fp32(logits).unsqueeze(1);
  x = at::upsample_bilinear2d(x, {model_size, model_size}, /*align_corners=*/false);
  x = at::upsample_bilinear2d(x, {height, width}, /*align_corners=*/false);
  return at::sigmoid(x.squeeze(1));
}

}  // namespace vesseltune::model::sam2
