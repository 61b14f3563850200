#include "vesseltune/model/sam2/sam2_model.h"

#include <numeric>

#include "vesseltune/core/check.h"
#include "vesseltune/model/precision.h"

namespace vesseltune::model::sam2 {
namespace {

constexpr double kNoObjectScore = -1024.0;  // SAM2's NO_OBJ_SCORE

}  // namespace

ImageFeatures ImageFeatures::repeat_per_prompt(const std::vector<int64_t>& prompts_per_image) const {
  VT_CHECK(static_cast<int64_t>(prompts_per_image.size()) == image_embedding.size(0), "repeat_per_prompt: ",
           prompts_per_image.size(), " prompt counts for ", image_embedding.size(0), " images");
  at::Tensor counts =
      at::tensor(prompts_per_image, at::TensorOptions().dtype(at::kLong)).to(image_embedding.device());
  const int64_t total = std::accumulate(prompts_per_image.begin(), prompts_per_image.end(), int64_t{0});
  auto repeat = [&](const at::Tensor& x) { return at::repeat_interleave(x, counts, 0, total); };
  return {repeat(image_embedding), repeat(feat_s0), repeat(feat_s1)};
}

Sam2ModelImpl::Sam2ModelImpl(const Sam2Config& config) : config_(config) {
  image_encoder_ = register_module("image_encoder", ImageEncoder(config));
  sam_prompt_encoder_ = register_module("sam_prompt_encoder", PromptEncoder(config));
  sam_mask_decoder_ = register_module("sam_mask_decoder", MaskDecoder(config));
  no_mem_embed_ = register_parameter("no_mem_embed", at::zeros({1, 1, config.d_model}));
}

std::vector<at::Tensor> Sam2ModelImpl::backbone_fpn(const at::Tensor& pixels) {
  VT_CHECK(pixels.size(-1) == config_.image_size && pixels.size(-2) == config_.image_size, "SAM2 expects ",
           config_.image_size, "x", config_.image_size, " pixels, got ", pixels.sizes());
  std::vector<at::Tensor> levels =
      cuda_graphs && FrozenGraphs::can_replay(*image_encoder_, pixels)
          ? encoder_graphs_.run(pixels, [this](const at::Tensor& x) { return image_encoder_->forward(x); })
          : image_encoder_->forward(pixels);
  VT_CHECK(levels.size() == 3, "SAM2 image path needs 3 FPN levels after the scalp, got ", levels.size());
  return levels;
}

ImageFeatures Sam2ModelImpl::encode_image(const at::Tensor& pixels) {
  std::vector<at::Tensor> levels = backbone_fpn(pixels);
  ImageFeatures features;
  features.image_embedding = levels[2] + no_mem_embed_.reshape({1, -1, 1, 1});
  features.feat_s0 = sam_mask_decoder_->project_s0(levels[0]);
  features.feat_s1 = sam_mask_decoder_->project_s1(levels[1]);
  return features;
}

MaskDecoderOutput Sam2ModelImpl::decode(const ImageFeatures& per_prompt, const at::Tensor& sparse_prompt) {
  const int64_t n = sparse_prompt.size(0);
  VT_CHECK(per_prompt.image_embedding.size(0) == n, "SAM2 decode: ", n, " prompts for ",
           per_prompt.image_embedding.size(0), " feature maps (repeat the image features per prompt)");
  return sam_mask_decoder_->forward(per_prompt.image_embedding, sam_prompt_encoder_->dense_positional_encoding(),
                                    sparse_prompt, sam_prompt_encoder_->no_mask_dense_embedding(n),
                                    per_prompt.feat_s0, per_prompt.feat_s1);
}

LanguagePromptedMasks Sam2ModelImpl::segment(const ImageFeatures& per_prompt, const at::Tensor& language_embeddings,
                                             bool gate_by_object_score) {
  VT_CHECK(language_embeddings.dim() == 2 && language_embeddings.size(1) == config_.d_model,
           "SAM2 language prompts must be [n, ", config_.d_model, "], got ", language_embeddings.sizes());
  const int64_t n = language_embeddings.size(0);
  at::Tensor empty_points = sam_prompt_encoder_->empty_point_tokens(n);
  at::Tensor sparse = at::cat({empty_points, language_embeddings.unsqueeze(1).to(empty_points.dtype())}, 1);
  MaskDecoderOutput decoded = decode(per_prompt, sparse);

  LanguagePromptedMasks out;
  out.multimask_logits = decoded.masks.slice(1, 1);
  out.iou_predictions = decoded.iou_predictions.slice(1, 1);
  out.object_score_logits = decoded.object_score_logits;
  if (gate_by_object_score) {
    at::Tensor present = (out.object_score_logits > 0).reshape({n, 1, 1, 1});
    out.multimask_logits =
        at::where(present, out.multimask_logits, at::full({}, kNoObjectScore, out.multimask_logits.options()));
  }
  at::Tensor best = out.iou_predictions.argmax(1);
  out.best_mask_logits = at_least_fp32(out.multimask_logits).gather(
      1, best.reshape({n, 1, 1, 1}).expand({n, 1, out.multimask_logits.size(2), out.multimask_logits.size(3)}))
                             .squeeze(1);
  return out;
}

void Sam2ModelImpl::train_mask_decoder_only() {
  for (auto& p : parameters()) p.set_requires_grad(false);
  for (auto& p : sam_mask_decoder_->parameters()) p.set_requires_grad(true);
}

std::vector<std::string> Sam2ModelImpl::unused_checkpoint_prefixes() {
  return {"memory_attention.", "memory_encoder.", "mask_downsample.", "maskmem_tpos_enc", "no_mem_pos_enc",
          "no_obj_ptr", "obj_ptr_proj.", "obj_ptr_tpos_proj.", "no_obj_embed_spatial"};
}

}  // namespace vesseltune::model::sam2
