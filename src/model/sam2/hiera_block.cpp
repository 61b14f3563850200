#include "vesseltune/model/sam2/hiera_block.h"

#include "vesseltune/core/check.h"
#include "vesseltune/core/torch_compat.h"

namespace vesseltune::model::sam2 {
namespace {

// [B, H, W, C] max-pooled by `stride` (floor), channels-last in and out; `stride` 0 is the identity.
at::Tensor pool_channels_last(const at::Tensor& x, int64_t stride) {
  if (stride == 0) return x;
  return at::max_pool2d(x.permute({0, 3, 1, 2}), {stride, stride}, {stride, stride}).permute({0, 2, 3, 1});
}

}  // namespace

std::pair<at::Tensor, std::array<int64_t, 2>> window_partition(const at::Tensor& x, int64_t window) {
  const int64_t b = x.size(0), h = x.size(1), w = x.size(2), c = x.size(3);
  const int64_t pad_h = (window - h % window) % window, pad_w = (window - w % window) % window;
  at::Tensor padded = (pad_h > 0 || pad_w > 0) ? at::constant_pad_nd(x, {0, 0, 0, pad_w, 0, pad_h}) : x;
  const int64_t hp = h + pad_h, wp = w + pad_w;
  at::Tensor windows = padded.view({b, hp / window, window, wp / window, window, c})
                           .permute({0, 1, 3, 2, 4, 5})
                           .reshape({-1, window, window, c});
  return {windows, {hp, wp}};
}

at::Tensor window_unpartition(const at::Tensor& windows, int64_t window, std::array<int64_t, 2> padded,
                              std::array<int64_t, 2> size) {
  const int64_t hp = padded[0], wp = padded[1];
  const int64_t b = windows.size(0) / ((hp / window) * (wp / window));
  at::Tensor x = windows.reshape({b, hp / window, wp / window, window, window, -1})
                     .permute({0, 1, 3, 2, 4, 5})
                     .reshape({b, hp, wp, -1});
  if (hp > size[0] || wp > size[1]) x = x.slice(1, 0, size[0]).slice(2, 0, size[1]);
  return x;
}

MultiScaleAttentionImpl::MultiScaleAttentionImpl(int64_t dim, int64_t dim_out, int64_t num_heads, int64_t q_stride)
    : num_heads_(num_heads), q_stride_(q_stride) {
  VT_CHECK(dim_out % num_heads == 0, "Hiera attention: dim_out ", dim_out, " is not a multiple of ", num_heads,
           " heads");
  qkv_ = register_module("qkv", torch::nn::Linear(dim, 3 * dim_out));
  proj_ = register_module("proj", torch::nn::Linear(dim_out, dim_out));
}

at::Tensor MultiScaleAttentionImpl::forward(const at::Tensor& x) {
  const int64_t b = x.size(0);
  int64_t h = x.size(1), w = x.size(2);
  std::vector<at::Tensor> qkv = qkv_->forward(x).reshape({b, h * w, 3, num_heads_, -1}).unbind(2);
  at::Tensor q = qkv[0], k = qkv[1], v = qkv[2];  // [B, HW, heads, head_dim]
  if (q_stride_ > 0) {
    q = pool_channels_last(q.reshape({b, h, w, -1}), q_stride_);
    h = q.size(1);
    w = q.size(2);
    q = q.reshape({b, h * w, num_heads_, -1});
  }
  at::Tensor out = compat::scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2));
  return proj_->forward(out.transpose(1, 2).reshape({b, h, w, -1}));
}

MultiScaleBlockImpl::MultiScaleBlockImpl(const MultiScaleBlockOptions& options) : options_(options) {
  // LayerNorm eps 1e-6 as in SAM2's Hiera (not torch's default 1e-5).
  norm1_ = register_module(
      "norm1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({options.dim}).eps(1e-6)));
  attn_ = register_module("attn",
                          MultiScaleAttention(options.dim, options.dim_out, options.num_heads, options.q_stride));
  norm2_ = register_module(
      "norm2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({options.dim_out}).eps(1e-6)));
  mlp_ = register_module("mlp", Mlp(options.dim_out, static_cast<int64_t>(options.dim_out * options.mlp_ratio),
                                    options.dim_out, 2, Activation::gelu));
  if (options.dim != options.dim_out) {
    proj_ = register_module("proj", torch::nn::Linear(options.dim, options.dim_out));
  }
}

at::Tensor MultiScaleBlockImpl::forward(const at::Tensor& input) {
  at::Tensor shortcut = input;
  at::Tensor x = norm1_->forward(input);
  if (options_.dim != options_.dim_out) shortcut = pool_channels_last(proj_->forward(x), options_.q_stride);

  int64_t window = options_.window_size;
  std::array<int64_t, 2> size = {x.size(1), x.size(2)};
  std::array<int64_t, 2> padded = size;
  if (window > 0) std::tie(x, padded) = window_partition(x, window);
  x = attn_->forward(x);
  if (options_.q_stride > 0) {
    // Pooled queries shrank each window; the map is now the shortcut's size.
    window = options_.window_size / options_.q_stride;
    size = {shortcut.size(1), shortcut.size(2)};
    if (window > 0) {
      padded = {size[0] + (window - size[0] % window) % window, size[1] + (window - size[1] % window) % window};
    }
  }
  if (options_.window_size > 0) x = window_unpartition(x, window, padded, size);

  x = shortcut + x;
  return x + mlp_->forward(norm2_->forward(x));
}

}  // namespace vesseltune::model::sam2
