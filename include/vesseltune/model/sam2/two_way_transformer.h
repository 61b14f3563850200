#pragma once
// The mask decoder's TwoWayTransformer (SAM's): each block runs token self-attention, tokens→image cross-
// attention, a ReLU MLP on the tokens and image→tokens cross-attention, each followed by a residual and a
// LayerNorm (eps 1e-5); positional encodings are re-added to queries and keys at every attention, except the
// first block's self-attention. A final tokens→image attention closes it.

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include <utility>

#include "vesseltune/model/sam2/mlp.h"
#include "vesseltune/model/sam2/sam2_config.h"

namespace vesseltune::model::sam2 {

// Multi-head attention whose projections map C → C / downsample_rate. Keys: q_proj, k_proj, v_proj, out_proj.
class DecoderAttentionImpl : public torch::nn::Module {
 public:
  DecoderAttentionImpl(int64_t embedding_dim, int64_t num_heads, int64_t downsample_rate);
  at::Tensor forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v);  // [B, N, C] each

 private:
  torch::nn::Linear q_proj_{nullptr}, k_proj_{nullptr}, v_proj_{nullptr}, out_proj_{nullptr};
  int64_t num_heads_;
};
TORCH_MODULE(DecoderAttention);

// Keys: self_attn, norm1, cross_attn_token_to_image, norm2, mlp.layers.{0,1}, norm3, norm4,
// cross_attn_image_to_token.
class TwoWayAttentionBlockImpl : public torch::nn::Module {
 public:
  TwoWayAttentionBlockImpl(const Sam2Config& config, bool skip_first_layer_pe);
  // (queries [B, Nt, C], keys [B, HW, C]) → updated (queries, keys).
  std::pair<at::Tensor, at::Tensor> forward(const at::Tensor& queries, const at::Tensor& keys,
                                            const at::Tensor& query_pe, const at::Tensor& key_pe);

 private:
  bool skip_first_layer_pe_;
  DecoderAttention self_attn_{nullptr}, cross_attn_token_to_image_{nullptr}, cross_attn_image_to_token_{nullptr};
  torch::nn::LayerNorm norm1_{nullptr}, norm2_{nullptr}, norm3_{nullptr}, norm4_{nullptr};
  Mlp mlp_{nullptr};
};
TORCH_MODULE(TwoWayAttentionBlock);

// Keys: layers.N, final_attn_token_to_image, norm_final_attn.
class TwoWayTransformerImpl : public torch::nn::Module {
 public:
  explicit TwoWayTransformerImpl(const Sam2Config& config);
  // image [B, C, h, w], image_pe [B, C, h, w], tokens [B, Nt, C] → (tokens [B, Nt, C], image [B, hw, C]).
  std::pair<at::Tensor, at::Tensor> forward(const at::Tensor& image, const at::Tensor& image_pe,
                                            const at::Tensor& tokens);

 private:
  torch::nn::ModuleList layers_{nullptr};
  DecoderAttention final_attn_token_to_image_{nullptr};
  torch::nn::LayerNorm norm_final_attn_{nullptr};
};
TORCH_MODULE(TwoWayTransformer);

}  // namespace vesseltune::model::sam2
