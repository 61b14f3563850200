#pragma once
// SAM2's `sam_mask_decoder`: output tokens (object score, IoU, 1 + num_multimask mask tokens) followed by the
// prompt tokens run through the TwoWayTransformer against image + dense prompt; the image side is upscaled ×4
// by two transposed convs, adding the stride-8 and stride-4 high-resolution features (`conv_s1`, `conv_s0`,
// applied by Sam2Model to the FPN levels); each mask token's hypernetwork MLP gives the weights that turn the
// upscaled map into mask logits. Also predicts IoU (sigmoid) per mask and an object-score logit.

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/pimpl.h>

#include "vesseltune/model/sam2/mlp.h"
#include "vesseltune/model/sam2/sam2_config.h"
#include "vesseltune/model/sam2/two_way_transformer.h"

namespace vesseltune::model::sam2 {

struct MaskDecoderOutput {
  at::Tensor masks;                // [B, 1 + num_multimask, 4h, 4w] logits; index 0 is the single-mask output
  at::Tensor iou_predictions;      // [B, 1 + num_multimask]
  at::Tensor object_score_logits;  // [B, 1]
};

// Keys: transformer, iou_token, mask_tokens, obj_score_token, output_upscaling.{0,1,3}, conv_s0, conv_s1,
// output_hypernetworks_mlps.N, iou_prediction_head, pred_obj_score_head.
class MaskDecoderImpl : public torch::nn::Module {
 public:
  explicit MaskDecoderImpl(const Sam2Config& config);

  // Everything per prompt (batch B = number of prompts; SAM2's repeat_image=false):
  // image [B, C, h, w], image_pe [1, C, h, w], sparse [B, N, C], dense [B, C, h, w],
  // feat_s0 [B, C/8, 4h, 4w] and feat_s1 [B, C/4, 2h, 2w] (already through conv_s0 / conv_s1).
  MaskDecoderOutput forward(const at::Tensor& image, const at::Tensor& image_pe, const at::Tensor& sparse,
                            const at::Tensor& dense, const at::Tensor& feat_s0, const at::Tensor& feat_s1);

  // The high-resolution projections, applied once per image to FPN levels 0 (stride 4) and 1 (stride 8).
  at::Tensor project_s0(const at::Tensor& level0);
  at::Tensor project_s1(const at::Tensor& level1);

 private:
  int64_t num_mask_tokens_;
  TwoWayTransformer transformer_{nullptr};
  torch::nn::Embedding iou_token_{nullptr}, mask_tokens_{nullptr}, obj_score_token_{nullptr};
  torch::nn::Sequential output_upscaling_{nullptr};
  torch::nn::Conv2d conv_s0_{nullptr}, conv_s1_{nullptr};
  torch::nn::ModuleList output_hypernetworks_mlps_{nullptr};
  Mlp iou_prediction_head_{nullptr}, pred_obj_score_head_{nullptr};
};
TORCH_MODULE(MaskDecoder);

}  // namespace vesseltune::model::sam2
