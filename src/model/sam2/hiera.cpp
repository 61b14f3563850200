#include "vesseltune/model/sam2/hiera.h"

#include <algorithm>

#include "vesseltune/core/check.h"
#include "vesseltune/model/sam2/hiera_block.h"

namespace vesseltune::model::sam2 {

PatchEmbedImpl::PatchEmbedImpl(int64_t embed_dim) {
  proj_ = register_module("proj", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, embed_dim, 7).stride(4).padding(3)));
}

at::Tensor PatchEmbedImpl::forward(const at::Tensor& pixels) { return proj_->forward(pixels).permute({0, 2, 3, 1}); }

HieraImpl::HieraImpl(const HieraConfig& config) : config_(config), stage_ends_(config.stage_ends()) {
  VT_CHECK(config.window_spec.size() == config.stages.size(), "Hiera: ", config.window_spec.size(),
           " window sizes for ", config.stages.size(), " stages");
  patch_embed_ = register_module("patch_embed", PatchEmbed(config.embed_dim));
  const auto& bkg = config.window_pos_embed_bkg_spatial_size;
  pos_embed_ = register_parameter("pos_embed", at::zeros({1, config.embed_dim, bkg[0], bkg[1]}));
  pos_embed_window_ = register_parameter(
      "pos_embed_window", at::zeros({1, config.embed_dim, config.window_spec[0], config.window_spec[0]}));

  // The first block of a stage still uses the previous stage's window (and pools it), as in SAM2.
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  int64_t dim = config.embed_dim, heads = config.num_heads;
  size_t stage = 0;
  for (int64_t i = 0; i < config.num_blocks(); ++i) {
    MultiScaleBlockOptions block;
    block.dim = dim;
    block.dim_out = dim;
    block.num_heads = heads;
    block.mlp_ratio = config.mlp_ratio;
    block.window_size = config.window_spec[stage];
    const bool global = std::find(config.global_att_blocks.begin(), config.global_att_blocks.end(), i) !=
                        config.global_att_blocks.end();
    if (global) block.window_size = 0;
    const bool stage_start = i > 0 && i - 1 == stage_ends_[stage];
    if (stage_start) {
      block.dim_out = dim * 2;
      block.num_heads = heads * 2;
      // Query pooling on the first q_pool stage changes.
      if (static_cast<int64_t>(stage) < config.q_pool) block.q_stride = config.q_stride;
      ++stage;
    }
    blocks_->push_back(MultiScaleBlock(block));
    dim = block.dim_out;
    heads = block.num_heads;
  }
}

at::Tensor HieraImpl::position_embedding(int64_t h, int64_t w) const {
  const int64_t window = pos_embed_window_.size(-1);
  VT_CHECK(h % window == 0 && w % window == 0, "Hiera: token grid ", h, "x", w,
           " is not a multiple of the window position embedding ", window);
  at::Tensor background = at::upsample_bicubic2d(pos_embed_, {h, w}, /*align_corners=*/false);
  return (background + pos_embed_window_.repeat({1, 1, h / window, w / window})).permute({0, 2, 3, 1});
}

std::vector<at::Tensor> HieraImpl::forward(const at::Tensor& pixels) {
  VT_CHECK(pixels.dim() == 4 && pixels.size(1) == 3, "Hiera: pixels must be [B, 3, H, W], got ", pixels.sizes());
  at::Tensor x = patch_embed_->forward(pixels);
  x = x + position_embedding(x.size(1), x.size(2));
  std::vector<at::Tensor> stage_outputs;
  for (size_t i = 0; i < blocks_->size(); ++i) {
    x = blocks_[i]->as<MultiScaleBlock>()->forward(x);
    if (std::find(stage_ends_.begin(), stage_ends_.end(), static_cast<int64_t>(i)) != stage_ends_.end()) {
      stage_outputs.push_back(x.permute({0, 3, 1, 2}));
    }
  }
  return stage_outputs;
}

}  // namespace vesseltune::model::sam2
