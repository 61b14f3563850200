#include "vesseltune/model/intern_vit.h"

#include <torch/torch.h>

#include <algorithm>

#include "vesseltune/core/check.h"
#include "vesseltune/core/torch_compat.h"
#include "vesseltune/model/activation_checkpoint.h"

namespace vesseltune::model {

InternVisionEmbeddingsImpl::InternVisionEmbeddingsImpl(const VisionConfig& config) : config_(config) {
  const int64_t side = config.patches_per_side();
  class_embedding = register_parameter("class_embedding", torch::randn({1, 1, config.hidden_size}) * 0.02);
  position_embedding =
      register_parameter("position_embedding", torch::randn({1, 1 + side * side, config.hidden_size}) * 0.02);
  patch_embedding = register_module(
      "patch_embedding", torch::nn::Conv2d(torch::nn::Conv2dOptions(config.num_channels, config.hidden_size,
                                                                    config.patch_size)
                                               .stride(config.patch_size)));
}

at::Tensor InternVisionEmbeddingsImpl::forward(const at::Tensor& pixel_values) {
  VT_CHECK(pixel_values.dim() == 4 && pixel_values.size(1) == config_.num_channels, "vision_model: pixel_values must be [tiles, ",
           config_.num_channels, ", H, W], got ", pixel_values.sizes());
  VT_CHECK(pixel_values.size(2) % config_.patch_size == 0 && pixel_values.size(3) % config_.patch_size == 0,
           "vision_model: tile size ", pixel_values.size(2), "x", pixel_values.size(3), " is not a multiple of the patch size ",
           config_.patch_size);
  at::Tensor patches = patch_embedding(pixel_values.to(patch_embedding->weight.scalar_type()));  // [n, C, h, w]
  const int64_t n = patches.size(0), h = patches.size(2), w = patches.size(3), c = patches.size(1);
  patches = patches.flatten(2).transpose(1, 2);  // [n, h·w, C]
  at::Tensor cls = class_embedding.expand({n, 1, c}).to(patches.scalar_type());
  at::Tensor tokens = at::cat({cls, patches}, 1);

  const int64_t side = config_.patches_per_side();
  at::Tensor position = position_embedding;
  if (h != side || w != side) {  // interpolate the patch positions to the tile's grid, as InternViT does
    at::Tensor grid = position.slice(1, 1).reshape({1, side, side, c}).permute({0, 3, 1, 2});
    grid = torch::nn::functional::interpolate(grid.to(at::kFloat), torch::nn::functional::InterpolateFuncOptions()
                                                                         .size(std::vector<int64_t>{h, w})
                                                                         .mode(torch::kBicubic)
                                                                         .align_corners(false))
               .to(position.scalar_type());
    position = at::cat({position.slice(1, 0, 1), grid.reshape({1, c, h * w}).permute({0, 2, 1})}, 1);
  }
  return tokens + position.to(tokens.scalar_type());
}

VisionNormImpl::VisionNormImpl(int64_t size, double eps, bool rms) : eps_(eps), rms_(rms) {
  weight = register_parameter("weight", torch::ones({size}));
  if (!rms) bias = register_parameter("bias", torch::zeros({size}));
}

at::Tensor VisionNormImpl::forward(const at::Tensor& x) {
  return rms_ ? compat::rms_norm(x, weight, eps_) : at::layer_norm(x, {x.size(-1)}, weight, bias, eps_);
}

InternAttentionImpl::InternAttentionImpl(const VisionConfig& config) : num_heads_(config.num_heads) {
  qkv = register_module("qkv", LoraLinear(config.hidden_size, 3 * config.hidden_size, config.qkv_bias));
  proj = register_module("proj", LoraLinear(config.hidden_size, config.hidden_size, true));
  if (config.qk_norm) {
    q_norm = register_module("q_norm", RMSNorm(config.hidden_size, config.norm_eps));
    k_norm = register_module("k_norm", RMSNorm(config.hidden_size, config.norm_eps));
  }
}

at::Tensor InternAttentionImpl::forward(const at::Tensor& x) {
  const int64_t b = x.size(0), n = x.size(1), c = x.size(2), d = c / num_heads_;
  std::vector<at::Tensor> parts = qkv(x).chunk(3, -1);  // q, k, v, each [b, n, c]
  at::Tensor q = parts[0], k = parts[1], v = parts[2];
  if (q_norm) {  // over the whole width, before the split into heads
    q = q_norm(q);
    k = k_norm(k);
  }
  auto heads = [&](const at::Tensor& t) { return t.reshape({b, n, num_heads_, d}).transpose(1, 2); };
  at::Tensor out = compat::scaled_dot_product_attention(heads(q), heads(k), heads(v), c10::nullopt, false,
                                                        1.0 / std::sqrt(static_cast<double>(d)));
  return proj(out.transpose(1, 2).reshape({b, n, c}));
}

InternMLPImpl::InternMLPImpl(const VisionConfig& config) {
  fc1 = register_module("fc1", LoraLinear(config.hidden_size, config.intermediate_size, true));
  fc2 = register_module("fc2", LoraLinear(config.intermediate_size, config.hidden_size, true));
}

at::Tensor InternMLPImpl::forward(const at::Tensor& x) { return fc2(at::gelu(fc1(x))); }

InternVisionEncoderLayerImpl::InternVisionEncoderLayerImpl(const VisionConfig& config) {
  norm1 = register_module("norm1", VisionNorm(config.hidden_size, config.norm_eps, config.rms_norm));
  attn = register_module("attn", InternAttention(config));
  ls1 = register_parameter("ls1", torch::full({config.hidden_size}, 0.1));
  norm2 = register_module("norm2", VisionNorm(config.hidden_size, config.norm_eps, config.rms_norm));
  mlp = register_module("mlp", InternMLP(config));
  ls2 = register_parameter("ls2", torch::full({config.hidden_size}, 0.1));
}

at::Tensor InternVisionEncoderLayerImpl::forward(const at::Tensor& x) {
  at::Tensor h = x + attn(norm1(x)) * ls1;
  return h + mlp(norm2(h)) * ls2;
}

InternVisionEncoderImpl::InternVisionEncoderImpl(const VisionConfig& config) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_layers; ++i) layers->push_back(InternVisionEncoderLayer(config));
}

InternVisionModelImpl::InternVisionModelImpl(const VisionConfig& config) : config_(config) {
  embeddings = register_module("embeddings", InternVisionEmbeddings(config));
  encoder = register_module("encoder", InternVisionEncoder(config));
}

at::Tensor InternVisionModelImpl::forward(const at::Tensor& pixel_values) {
  if (cuda_graphs && FrozenGraphs::can_replay(*this, pixel_values)) {
    const auto frozen_forward = [this](const at::Tensor& x) { return std::vector<at::Tensor>{encode(x, false)}; };
    return graphs_.run(pixel_values, frozen_forward)[0];
  }
  // A frozen encoder records no graph, so there is nothing to checkpoint (recomputing it would be waste).
  const std::vector<at::Tensor> params = parameters();
  const bool trains = std::any_of(params.begin(), params.end(), [](const at::Tensor& p) { return p.requires_grad(); });
  return encode(pixel_values, at::GradMode::is_enabled() && (pixel_values.requires_grad() || trains));
}

at::Tensor InternVisionModelImpl::encode(const at::Tensor& pixel_values, bool records_graph) {
  at::Tensor x = embeddings(pixel_values);
  for (const auto& module : *encoder->layers) {
    auto layer = module->as<InternVisionEncoderLayerImpl>();
    if (activation_checkpointing && is_training() && records_graph) {
      auto holder = std::static_pointer_cast<InternVisionEncoderLayerImpl>(module);
      x = checkpoint([holder](const at::Tensor& input) { return holder->forward(input); }, x);
    } else {
      x = layer->forward(x);
    }
  }
  return x;
}

}  // namespace vesseltune::model
