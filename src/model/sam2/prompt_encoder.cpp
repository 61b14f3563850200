#include "vesseltune/model/sam2/prompt_encoder.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/conv.h>

#include <cmath>

#include "vesseltune/model/sam2/layer_norm_2d.h"

namespace vesseltune::model::sam2 {

PositionEmbeddingRandomImpl::PositionEmbeddingRandomImpl(int64_t num_pos_feats) {
  gaussian_matrix_ = register_buffer("positional_encoding_gaussian_matrix", at::randn({2, num_pos_feats}));
}

at::Tensor PositionEmbeddingRandomImpl::forward(int64_t h, int64_t w) const {
  // Positions in float32 whatever the module's dtype: bf16 would round the grid coordinates.
  const auto options = gaussian_matrix_.options().dtype(at::kFloat);
  at::Tensor y = (at::arange(h, options) + 0.5) / static_cast<double>(h);
  at::Tensor x = (at::arange(w, options) + 0.5) / static_cast<double>(w);
  at::Tensor coords = at::stack({x.unsqueeze(0).expand({h, w}), y.unsqueeze(1).expand({h, w})}, -1);  // (x, y)
  at::Tensor projected = 2.0 * M_PI * at::matmul(2.0 * coords - 1.0, gaussian_matrix_.to(at::kFloat));
  return at::cat({at::sin(projected), at::cos(projected)}, -1).permute({2, 0, 1}).to(gaussian_matrix_.scalar_type());
}

PromptEncoderImpl::PromptEncoderImpl(const Sam2Config& config) : embedding_size_(config.image_embedding_size()) {
  const int64_t c = config.d_model;
  pe_layer_ = register_module("pe_layer", PositionEmbeddingRandom(c / 2));
  point_embeddings_ = register_module("point_embeddings", torch::nn::ModuleList());
  for (int i = 0; i < 4; ++i) point_embeddings_->push_back(torch::nn::Embedding(1, c));  // neg, pos, box corners
  not_a_point_embed_ = register_module("not_a_point_embed", torch::nn::Embedding(1, c));
  const int64_t m = config.mask_in_chans;
  mask_downscaling_ = register_module(
      "mask_downscaling",
      torch::nn::Sequential(torch::nn::Conv2d(torch::nn::Conv2dOptions(1, m / 4, 2).stride(2)), LayerNorm2d(m / 4),
                            torch::nn::GELU(), torch::nn::Conv2d(torch::nn::Conv2dOptions(m / 4, m, 2).stride(2)),
                            LayerNorm2d(m), torch::nn::GELU(), torch::nn::Conv2d(torch::nn::Conv2dOptions(m, c, 1))));
  no_mask_embed_ = register_module("no_mask_embed", torch::nn::Embedding(1, c));
}

at::Tensor PromptEncoderImpl::dense_positional_encoding() const {
  return pe_layer_->forward(embedding_size_, embedding_size_).unsqueeze(0);
}

at::Tensor PromptEncoderImpl::empty_point_tokens(int64_t batch) const {
  return not_a_point_embed_->weight.unsqueeze(0).expand({batch, 2, -1});
}

at::Tensor PromptEncoderImpl::no_mask_dense_embedding(int64_t batch) const {
  return no_mask_embed_->weight.reshape({1, -1, 1, 1}).expand({batch, -1, embedding_size_, embedding_size_});
}

}  // namespace vesseltune::model::sam2
