#pragma once
// InternViT (InternVL's vision encoder) with the keys of Sa2VA checkpoints under "vision_model.":
//   embeddings.{class_embedding, position_embedding, patch_embedding}
//   encoder.layers.N.{norm1, attn.qkv, attn.proj, [attn.q_norm, attn.k_norm], ls1, norm2, mlp.fc1, mlp.fc2, ls2}
// Pre-norm blocks with layer scale: x += ls1·attn(norm1(x)); x += ls2·mlp(norm2(x)). No final norm. The
// position embeddings are interpolated (bicubic) when a tile's patch grid differs from the trained one.

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "vesseltune/model/config.h"
#include "vesseltune/model/frozen_graphs.h"
#include "vesseltune/model/lora_linear.h"
#include "vesseltune/model/rms_norm.h"

namespace vesseltune::model {

class InternVisionEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit InternVisionEmbeddingsImpl(const VisionConfig& config);
  // pixel_values [tiles, 3, H, W] → [tiles, 1 + (H/p)·(W/p), hidden]
  at::Tensor forward(const at::Tensor& pixel_values);

  at::Tensor class_embedding;     // [1, 1, hidden]
  at::Tensor position_embedding;  // [1, 1 + side², hidden]
  torch::nn::Conv2d patch_embedding{nullptr};

 private:
  VisionConfig config_;
};
TORCH_MODULE(InternVisionEmbeddings);

// LayerNorm (300M) or RMSNorm (6B), per norm_type.
class VisionNormImpl : public torch::nn::Module {
 public:
  VisionNormImpl(int64_t size, double eps, bool rms);
  at::Tensor forward(const at::Tensor& x);

  at::Tensor weight, bias;  // bias: layer norm only

 private:
  double eps_;
  bool rms_;
};
TORCH_MODULE(VisionNorm);

class InternAttentionImpl : public torch::nn::Module {
 public:
  explicit InternAttentionImpl(const VisionConfig& config);
  at::Tensor forward(const at::Tensor& x);

  LoraLinear qkv{nullptr}, proj{nullptr};
  RMSNorm q_norm{nullptr}, k_norm{nullptr};  // qk_normalization only

 private:
  int64_t num_heads_;
};
TORCH_MODULE(InternAttention);

class InternMLPImpl : public torch::nn::Module {
 public:
  explicit InternMLPImpl(const VisionConfig& config);
  at::Tensor forward(const at::Tensor& x);

  LoraLinear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(InternMLP);

class InternVisionEncoderLayerImpl : public torch::nn::Module {
 public:
  explicit InternVisionEncoderLayerImpl(const VisionConfig& config);
  at::Tensor forward(const at::Tensor& x);

  VisionNorm norm1{nullptr}, norm2{nullptr};
  InternAttention attn{nullptr};
  InternMLP mlp{nullptr};
  at::Tensor ls1, ls2;
};
TORCH_MODULE(InternVisionEncoderLayer);

class InternVisionEncoderImpl : public torch::nn::Module {
 public:
  explicit InternVisionEncoderImpl(const VisionConfig& config);
  torch::nn::ModuleList layers{nullptr};
};
TORCH_MODULE(InternVisionEncoder);

class InternVisionModelImpl : public torch::nn::Module {
 public:
  explicit InternVisionModelImpl(const VisionConfig& config);
  // pixel_values [tiles, 3, H, W] → last layer's hidden states [tiles, 1 + patches, hidden] (CLS first).
  at::Tensor forward(const at::Tensor& pixel_values);

  // Recompute each encoder layer in the backward pass instead of keeping its activations.
  bool activation_checkpointing = false;
  // Replay the forward as CUDA graphs on a GPU when nothing in it needs a gradient (frozen_graphs.h).
  bool cuda_graphs = false;

  InternVisionEmbeddings embeddings{nullptr};
  InternVisionEncoder encoder{nullptr};

 private:
  at::Tensor encode(const at::Tensor& pixel_values, bool records_graph);

  VisionConfig config_;
  FrozenGraphs graphs_;
};
TORCH_MODULE(InternVisionModel);

}  // namespace vesseltune::model
