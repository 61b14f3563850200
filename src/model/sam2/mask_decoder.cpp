#include "vesseltune/model/sam2/mask_decoder.h"

#include <torch/nn/modules/activation.h>

#include "vesseltune/core/check.h"
#include "vesseltune/model/sam2/layer_norm_2d.h"

namespace vesseltune::model::sam2 {

MaskDecoderImpl::MaskDecoderImpl(const Sam2Config& config) : num_mask_tokens_(config.num_multimask_outputs + 1) {
  const int64_t c = config.d_model;
  transformer_ = register_module("transformer", TwoWayTransformer(config));
  iou_token_ = register_module("iou_token", torch::nn::Embedding(1, c));
  mask_tokens_ = register_module("mask_tokens", torch::nn::Embedding(num_mask_tokens_, c));
  obj_score_token_ = register_module("obj_score_token", torch::nn::Embedding(1, c));
  output_upscaling_ = register_module(
      "output_upscaling",
      torch::nn::Sequential(torch::nn::ConvTranspose2d(torch::nn::ConvTranspose2dOptions(c, c / 4, 2).stride(2)),
                            LayerNorm2d(c / 4), torch::nn::GELU(),
                            torch::nn::ConvTranspose2d(torch::nn::ConvTranspose2dOptions(c / 4, c / 8, 2).stride(2)),
                            torch::nn::GELU()));
  conv_s0_ = register_module("conv_s0", torch::nn::Conv2d(torch::nn::Conv2dOptions(c, c / 8, 1)));
  conv_s1_ = register_module("conv_s1", torch::nn::Conv2d(torch::nn::Conv2dOptions(c, c / 4, 1)));
  output_hypernetworks_mlps_ = register_module("output_hypernetworks_mlps", torch::nn::ModuleList());
  for (int64_t i = 0; i < num_mask_tokens_; ++i) {
    output_hypernetworks_mlps_->push_back(Mlp(c, c, c / 8, 3, Activation::relu));
  }
  iou_prediction_head_ = register_module(
      "iou_prediction_head", Mlp(c, config.iou_head_hidden_dim, num_mask_tokens_, config.iou_head_depth,
                                 Activation::relu, config.iou_prediction_use_sigmoid));
  pred_obj_score_head_ = register_module("pred_obj_score_head", Mlp(c, c, 1, 3, Activation::relu));
}

at::Tensor MaskDecoderImpl::project_s0(const at::Tensor& level0) { return conv_s0_->forward(level0); }
at::Tensor MaskDecoderImpl::project_s1(const at::Tensor& level1) { return conv_s1_->forward(level1); }

MaskDecoderOutput MaskDecoderImpl::forward(const at::Tensor& image, const at::Tensor& image_pe,
                                           const at::Tensor& sparse, const at::Tensor& dense,
                                           const at::Tensor& feat_s0, const at::Tensor& feat_s1) {
  const int64_t b = sparse.size(0);
  VT_CHECK(image.size(0) == b && dense.size(0) == b, "mask decoder: ", b, " prompts but image batch ", image.size(0),
           " and dense batch ", dense.size(0));
  at::Tensor output_tokens = at::cat({obj_score_token_->weight, iou_token_->weight, mask_tokens_->weight}, 0);
  at::Tensor tokens = at::cat({output_tokens.unsqueeze(0).expand({b, -1, -1}), sparse.to(output_tokens.dtype())}, 1);

  const int64_t c = image.size(1), h = image.size(2), w = image.size(3);
  at::Tensor src = image + dense;
  at::Tensor pos = image_pe.expand({b, -1, -1, -1});
  auto [hs, keys] = transformer_->forward(src, pos, tokens);
  at::Tensor iou_token_out = hs.select(1, 1);
  at::Tensor mask_tokens_out = hs.slice(1, 2, 2 + num_mask_tokens_);

  // output_upscaling = [dc1, ln1, act1, dc2, act2], with the high-resolution features added before each act.
  at::Tensor grid = keys.transpose(1, 2).reshape({b, c, h, w});
  at::Tensor up = output_upscaling_[0]->as<torch::nn::ConvTranspose2d>()->forward(grid) + feat_s1;
  up = at::gelu(output_upscaling_[1]->as<LayerNorm2d>()->forward(up));
  up = at::gelu(output_upscaling_[3]->as<torch::nn::ConvTranspose2d>()->forward(up) + feat_s0);

  std::vector<at::Tensor> hyper;
  for (int64_t i = 0; i < num_mask_tokens_; ++i) {
    hyper.push_back(output_hypernetworks_mlps_[i]->as<Mlp>()->forward(mask_tokens_out.select(1, i)));
  }
  at::Tensor hyper_in = at::stack(hyper, 1);  // [B, masks, C/8]
  const int64_t uh = up.size(2), uw = up.size(3);
  at::Tensor masks = at::matmul(hyper_in, up.reshape({b, up.size(1), uh * uw})).reshape({b, -1, uh, uw});

  return {masks, iou_prediction_head_->forward(iou_token_out), pred_obj_score_head_->forward(hs.select(1, 0))};
}

}  // namespace vesseltune::model::sam2
