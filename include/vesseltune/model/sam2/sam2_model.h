#pragma once
// SAM2 for single images (Sa2VA's `grounding_encoder.sam2_model`): image encoder → FPN levels; the two
// high-resolution levels go through the decoder's conv_s0 / conv_s1 once per image; the stride-16 level gets
// `no_mem_embed` added (SAM2's memory-free path for a first frame). The mask decoder then runs once per prompt.
// Checkpoint keys beyond these (memory attention/encoder, object pointers, temporal encodings) belong to SAM2's
// video tracking and are listed by unused_checkpoint_prefixes() for the loader to skip.

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/pimpl.h>

#include <string>
#include <vector>

#include "vesseltune/model/frozen_graphs.h"
#include "vesseltune/model/sam2/image_encoder.h"
#include "vesseltune/model/sam2/mask_decoder.h"
#include "vesseltune/model/sam2/prompt_encoder.h"
#include "vesseltune/model/sam2/sam2_config.h"

namespace vesseltune::model::sam2 {

// What the mask decoder needs of an image; batch = images, or prompts after repeat_per_prompt.
struct ImageFeatures {
  at::Tensor image_embedding;  // [B, C, h, w]: FPN stride-16 level + no_mem_embed
  at::Tensor feat_s0;          // [B, C/8, 4h, 4w]: conv_s0(FPN stride-4 level)
  at::Tensor feat_s1;          // [B, C/4, 2h, 2w]: conv_s1(FPN stride-8 level)

  // Each image's features repeated for its prompts (prompts_per_image[i] copies of image i, in order).
  ImageFeatures repeat_per_prompt(const std::vector<int64_t>& prompts_per_image) const;
};

struct LanguagePromptedMasks {
  at::Tensor multimask_logits;     // [n, 3, 4h, 4w] (after the object-score gate, when asked for)
  at::Tensor iou_predictions;      // [n, 3]
  at::Tensor object_score_logits;  // [n, 1]
  at::Tensor best_mask_logits;     // [n, 4h, 4w] float32: the multimask output with the highest predicted IoU
};

// Keys: image_encoder, sam_prompt_encoder, sam_mask_decoder, no_mem_embed.
class Sam2ModelImpl : public torch::nn::Module {
 public:
  explicit Sam2ModelImpl(const Sam2Config& config);

  const Sam2Config& config() const { return config_; }
  // FPN levels after the scalp, highest resolution first (what the parity test compares).
  std::vector<at::Tensor> backbone_fpn(const at::Tensor& pixels);
  // [B, 3, S, S] normalised pixels → per-image features.
  ImageFeatures encode_image(const at::Tensor& pixels);
  // Raw decoder outputs for given sparse prompts [n, N, C] (dense prompt: no_mask_embed).
  MaskDecoderOutput decode(const ImageFeatures& per_prompt, const at::Tensor& sparse_prompt);
  // Sa2VA's prompting: sparse = [not-a-point, not-a-point, language embedding]; multimask output; the mask
  // with the highest predicted IoU, as Sa2VA's SAM2 subclass does. gate_by_object_score: SAM2's own base class
  // replaces the logits of prompts whose object score is ≤ 0 by -1024; Sa2VA leaves that out (opt-in here).
  LanguagePromptedMasks segment(const ImageFeatures& per_prompt, const at::Tensor& language_embeddings,
                                bool gate_by_object_score = false);

  // Sa2VA trains the mask decoder only: everything else gets requires_grad false.
  void train_mask_decoder_only();
  // Checkpoint name prefixes (relative to sam2_model.) of SAM2's video-memory parts, never loaded here.
  static std::vector<std::string> unused_checkpoint_prefixes();

  // Replay the frozen image encoder as CUDA graphs on a GPU (frozen_graphs.h); eager when it is trained.
  bool cuda_graphs = false;

  ImageEncoder image_encoder() const { return image_encoder_; }
  PromptEncoder prompt_encoder() const { return sam_prompt_encoder_; }
  MaskDecoder mask_decoder() const { return sam_mask_decoder_; }

 private:
  Sam2Config config_;
  ImageEncoder image_encoder_{nullptr};
  PromptEncoder sam_prompt_encoder_{nullptr};
  MaskDecoder sam_mask_decoder_{nullptr};
  at::Tensor no_mem_embed_;
  FrozenGraphs encoder_graphs_;
};
TORCH_MODULE(Sam2Model);

}  // namespace vesseltune::model::sam2
