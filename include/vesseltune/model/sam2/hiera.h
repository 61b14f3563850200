#pragma once
// Hiera trunk (SAM2's `image_encoder.trunk`): a 7×7 stride-4 patch embedding, a windowed position embedding
// (the background embedding bicubically resized to the token grid plus the first-stage window embedding tiled
// over it), then the blocks of four stages. Returns the last block of every stage as [B, C, H, W], highest
// resolution (stride 4) first.

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include <vector>

#include "vesseltune/model/sam2/sam2_config.h"

namespace vesseltune::model::sam2 {

// Key: proj (Conv2d 3 → embed_dim, kernel 7, stride 4, padding 3). Output channels-last.
class PatchEmbedImpl : public torch::nn::Module {
 public:
  explicit PatchEmbedImpl(int64_t embed_dim);
  at::Tensor forward(const at::Tensor& pixels);

 private:
  torch::nn::Conv2d proj_{nullptr};
};
TORCH_MODULE(PatchEmbed);

// Keys: patch_embed, pos_embed, pos_embed_window, blocks.N.
class HieraImpl : public torch::nn::Module {
 public:
  explicit HieraImpl(const HieraConfig& config);
  std::vector<at::Tensor> forward(const at::Tensor& pixels);

 private:
  at::Tensor position_embedding(int64_t h, int64_t w) const;  // [1, h, w, C]

  HieraConfig config_;
  std::vector<int64_t> stage_ends_;
  PatchEmbed patch_embed_{nullptr};
  at::Tensor pos_embed_, pos_embed_window_;
  torch::nn::ModuleList blocks_{nullptr};
};
TORCH_MODULE(Hiera);

}  // namespace vesseltune::model::sam2
