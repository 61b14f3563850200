#pragma once
// SAM2's `sam_prompt_encoder`, reduced to what Sa2VA prompts with: the dense positional encoding of the
// image-embedding grid (random Fourier features, `pe_layer.positional_encoding_gaussian_matrix`), the
// not-a-point token that pads an empty point prompt, and `no_mask_embed` as the dense prompt. The point,
// box and mask branches (`point_embeddings.N`, `mask_downscaling`) are registered so checkpoints load
// strictly; Sa2VA never feeds points, boxes or masks.

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/pimpl.h>

#include "vesseltune/model/sam2/sam2_config.h"

namespace vesseltune::model::sam2 {

// Key: positional_encoding_gaussian_matrix ([2, C/2] buffer).
class PositionEmbeddingRandomImpl : public torch::nn::Module {
 public:
  explicit PositionEmbeddingRandomImpl(int64_t num_pos_feats);
  // Encoding of the h×w grid of pixel centres normalised to [0, 1]: [C, h, w].
  at::Tensor forward(int64_t h, int64_t w) const;

 private:
  at::Tensor gaussian_matrix_;
};
TORCH_MODULE(PositionEmbeddingRandom);

class PromptEncoderImpl : public torch::nn::Module {
 public:
  explicit PromptEncoderImpl(const Sam2Config& config);
  // [1, C, h, w] positional encoding of the image embedding (SAM2's get_dense_pe).
  at::Tensor dense_positional_encoding() const;
  // Sparse prompt of an empty point prompt: [batch, 2, C], two not-a-point tokens (the empty point SAM2
  // inserts when no point is given, plus the padding point it appends when no box is given).
  at::Tensor empty_point_tokens(int64_t batch) const;
  // Dense prompt without a mask: no_mask_embed broadcast to [batch, C, h, w].
  at::Tensor no_mask_dense_embedding(int64_t batch) const;

 private:
  int64_t embedding_size_;
  PositionEmbeddingRandom pe_layer_{nullptr};
  torch::nn::ModuleList point_embeddings_{nullptr};
  torch::nn::Embedding not_a_point_embed_{nullptr};
  torch::nn::Sequential mask_downscaling_{nullptr};
  torch::nn::Embedding no_mask_embed_{nullptr};
};
TORCH_MODULE(PromptEncoder);

}  // namespace vesseltune::model::sam2
