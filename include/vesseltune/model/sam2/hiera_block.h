#pragma once
// One Hiera block (SAM2's MultiScaleBlock): pre-norm multi-head attention, inside non-overlapping windows
// (padded to a multiple of the window) or over the whole map (global blocks), then a GELU MLP. The first
// block of a pooled stage max-pools the queries ×q_stride and projects the shortcut to the wider dim_out.
// Tensors are channels-last: [B, H, W, C].

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "vesseltune/model/sam2/mlp.h"

namespace vesseltune::model::sam2 {

// Keys: qkv, proj.
class MultiScaleAttentionImpl : public torch::nn::Module {
 public:
  MultiScaleAttentionImpl(int64_t dim, int64_t dim_out, int64_t num_heads, int64_t q_stride);
  at::Tensor forward(const at::Tensor& x);

 private:
  torch::nn::Linear qkv_{nullptr}, proj_{nullptr};
  int64_t num_heads_, q_stride_;
};
TORCH_MODULE(MultiScaleAttention);

struct MultiScaleBlockOptions {
  int64_t dim = 0, dim_out = 0, num_heads = 1;
  int64_t window_size = 0;  // 0: global attention
  int64_t q_stride = 0;     // 0: no query pooling
  double mlp_ratio = 4.0;
};

// Keys: norm1, attn, norm2, mlp.layers.{0,1}, and proj where dim != dim_out.
class MultiScaleBlockImpl : public torch::nn::Module {
 public:
  explicit MultiScaleBlockImpl(const MultiScaleBlockOptions& options);
  at::Tensor forward(const at::Tensor& x);

 private:
  MultiScaleBlockOptions options_;
  torch::nn::LayerNorm norm1_{nullptr}, norm2_{nullptr};
  MultiScaleAttention attn_{nullptr};
  Mlp mlp_{nullptr};
  torch::nn::Linear proj_{nullptr};
};
TORCH_MODULE(MultiScaleBlock);

// [B, H, W, C] → [B·nW, w, w, C], zero-padding H and W up to multiples of w; returns the padded size too.
std::pair<at::Tensor, std::array<int64_t, 2>> window_partition(const at::Tensor& x, int64_t window);
// Inverse of window_partition, cropping the padding back to `size`.
at::Tensor window_unpartition(const at::Tensor& windows, int64_t window, std::array<int64_t, 2> padded,
                              std::array<int64_t, 2> size);

}  // namespace vesseltune::model::sam2
