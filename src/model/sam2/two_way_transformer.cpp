#include "vesseltune/model/sam2/two_way_transformer.h"

#include "vesseltune/core/check.h"
#include "vesseltune/core/torch_compat.h"

namespace vesseltune::model::sam2 {

DecoderAttentionImpl::DecoderAttentionImpl(int64_t embedding_dim, int64_t num_heads, int64_t downsample_rate)
    : num_heads_(num_heads) {
  const int64_t internal = embedding_dim / downsample_rate;
  VT_CHECK(internal % num_heads == 0, "decoder attention: internal dim ", internal, " not divisible by ", num_heads,
           " heads");
  q_proj_ = register_module("q_proj", torch::nn::Linear(embedding_dim, internal));
  k_proj_ = register_module("k_proj", torch::nn::Linear(embedding_dim, internal));
  v_proj_ = register_module("v_proj", torch::nn::Linear(embedding_dim, internal));
  out_proj_ = register_module("out_proj", torch::nn::Linear(internal, embedding_dim));
}

at::Tensor DecoderAttentionImpl::forward(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v) {
  auto heads = [this](const at::Tensor& x) {  // [B, N, D] → [B, heads, N, D / heads]
    return x.reshape({x.size(0), x.size(1), num_heads_, -1}).transpose(1, 2);
  };
  at::Tensor out = compat::scaled_dot_product_attention(heads(q_proj_->forward(q)), heads(k_proj_->forward(k)),
                                                        heads(v_proj_->forward(v)));
  return out_proj_->forward(out.transpose(1, 2).reshape({q.size(0), q.size(1), -1}));
}

TwoWayAttentionBlockImpl::TwoWayAttentionBlockImpl(const Sam2Config& config, bool skip_first_layer_pe)
    : skip_first_layer_pe_(skip_first_layer_pe) {
  const int64_t c = config.d_model, heads = config.decoder_heads, rate = config.attention_downsample_rate;
  self_attn_ = register_module("self_attn", DecoderAttention(c, heads, 1));
  norm1_ = register_module("norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c})));
  cross_attn_token_to_image_ = register_module("cross_attn_token_to_image", DecoderAttention(c, heads, rate));
  norm2_ = register_module("norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c})));
  mlp_ = register_module("mlp", Mlp(c, config.decoder_mlp_dim, c, 2, Activation::relu));
  norm3_ = register_module("norm3", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c})));
  norm4_ = register_module("norm4", torch::nn::LayerNorm(torch::nn::LayerNormOptions({c})));
  cross_attn_image_to_token_ = register_module("cross_attn_image_to_token", DecoderAttention(c, heads, rate));
}

std::pair<at::Tensor, at::Tensor> TwoWayAttentionBlockImpl::forward(const at::Tensor& queries_in,
                                                                   const at::Tensor& keys_in,
                                                                   const at::Tensor& query_pe,
                                                                   const at::Tensor& key_pe) {
  at::Tensor queries = queries_in, keys = keys_in;
  if (skip_first_layer_pe_) {
    queries = self_attn_->forward(queries, queries, queries);  // no residual: the tokens are their own PE
  } else {
    at::Tensor q = queries + query_pe;
    queries = queries + self_attn_->forward(q, q, queries);
  }
  queries = norm1_->forward(queries);

  queries = queries + cross_attn_token_to_image_->forward(queries + query_pe, keys + key_pe, keys);
  queries = norm2_->forward(queries);

  queries = norm3_->forward(queries + mlp_->forward(queries));

  keys = keys + cross_attn_image_to_token_->forward(keys + key_pe, queries + query_pe, queries);
  keys = norm4_->forward(keys);
  return {queries, keys};
}

TwoWayTransformerImpl::TwoWayTransformerImpl(const Sam2Config& config) {
  layers_ = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.decoder_depth; ++i) layers_->push_back(TwoWayAttentionBlock(config, i == 0));
  final_attn_token_to_image_ = register_module(
      "final_attn_token_to_image", DecoderAttention(config.d_model, config.decoder_heads,
                                                    config.attention_downsample_rate));
  norm_final_attn_ = register_module("norm_final_attn",
                                     torch::nn::LayerNorm(torch::nn::LayerNormOptions({config.d_model})));
}

std::pair<at::Tensor, at::Tensor> TwoWayTransformerImpl::forward(const at::Tensor& image, const at::Tensor& image_pe,
                                                                 const at::Tensor& tokens) {
  at::Tensor keys = image.flatten(2).permute({0, 2, 1});
  at::Tensor key_pe = image_pe.flatten(2).permute({0, 2, 1});
  at::Tensor queries = tokens;
  for (size_t i = 0; i < layers_->size(); ++i) {
    std::tie(queries, keys) = layers_[i]->as<TwoWayAttentionBlock>()->forward(queries, keys, tokens, key_pe);
  }
  queries = queries + final_attn_token_to_image_->forward(queries + tokens, keys + key_pe, keys);
  return {norm_final_attn_->forward(queries), keys};
}

}  // namespace vesseltune::model::sam2
