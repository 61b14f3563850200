#pragma once
// Qwen2 / Qwen2.5 causal LM with the keys of Sa2VA checkpoints under "language_model.":
//   model.embed_tokens, model.layers.N.{input_layernorm, self_attn.{q,k,v,o}_proj, post_attention_layernorm,
//   mlp.{gate,up,down}_proj}, model.norm, lm_head (absent when the embeddings are tied).
// Pre-norm decoder layers: RMSNorm, grouped-query attention with q/k/v bias and RoPE (rotate-half form,
// θ from the config), SwiGLU MLP. Every Linear except lm_head is a LoraLinear, so adapters can be added.

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/pimpl.h>

#include "vesseltune/model/checkpoint_graphs.h"
#include "vesseltune/model/config.h"
#include "vesseltune/model/lora_linear.h"
#include "vesseltune/model/rms_norm.h"

namespace vesseltune::model {

// With CUDA graphs of the layers, the sequence is padded at its end to a multiple of this many tokens: graphs are
// recorded per token count, and prompts differ in length. Causal attention keeps the padding out of the real
// tokens (none attends to a later one), and the padded positions' outputs are dropped.
constexpr int64_t kGraphTokenBucket = 64;
// The sequence length graphed layers run at for TOKENS tokens (the memory plan counts the same).
constexpr int64_t graphed_token_count(int64_t tokens) {
  return (tokens + kGraphTokenBucket - 1) / kGraphTokenBucket * kGraphTokenBucket;
}
// Whether training takes embed_tokens' gradients as sparse rows (setup::build_model; the memory plan counts the
// same): yes unless the weight is tied to lm_head, whose gradient is dense.
inline bool sparse_embedding_gradient(const LlmConfig& config) { return !config.tie_word_embeddings; }

// The attention pattern of a batch: causal, plus padded keys hidden when a padding mask is given.
struct AttentionMask {
  at::Tensor visible;  // bool [B, 1, T, T], true = may attend; undefined: causal only (flash kernels)
};
// attention_mask [B, T]: 1 for tokens, 0 for padding (undefined: no padding).
AttentionMask make_causal_mask(const at::Tensor& attention_mask, int64_t tokens);

// cos and sin [T, head_dim] (fp32) of RoPE for positions 0..T-1.
std::pair<at::Tensor, at::Tensor> rope_tables(int64_t tokens, int64_t head_dim, double theta, at::Device device);

// One decoder layer's keys and values (after RoPE) of the positions seen so far, for generation: storage for
// CAPACITY positions, the first LENGTH of them filled. A step appends its positions and attends to all filled ones.
struct LayerCache {
  at::Tensor keys, values;  // [B, kv_heads, capacity, head_dim]
  int64_t length = 0;
};

class Qwen2AttentionImpl : public torch::nn::Module {
 public:
  explicit Qwen2AttentionImpl(const LlmConfig& config);
  // With CACHE, the positions of x are appended to it and attend to every cached one (MASK [B, 1, T, cached + T]
  // required); cos and sin are [T, d] or per sample [B, 1, T, d].
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const AttentionMask& mask,
                     LayerCache* cache = nullptr);

  LoraLinear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, o_proj{nullptr};

 private:
  int64_t num_heads_, num_kv_heads_, head_dim_;
};
TORCH_MODULE(Qwen2Attention);

class Qwen2MLPImpl : public torch::nn::Module {
 public:
  explicit Qwen2MLPImpl(const LlmConfig& config);
  at::Tensor forward(const at::Tensor& x);

  LoraLinear gate_proj{nullptr}, up_proj{nullptr}, down_proj{nullptr};
};
TORCH_MODULE(Qwen2MLP);

class Qwen2DecoderLayerImpl : public torch::nn::Module {
 public:
  explicit Qwen2DecoderLayerImpl(const LlmConfig& config);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const AttentionMask& mask,
                     LayerCache* cache = nullptr);

  RMSNorm input_layernorm{nullptr}, post_attention_layernorm{nullptr};
  Qwen2Attention self_attn{nullptr};
  Qwen2MLP mlp{nullptr};
};
TORCH_MODULE(Qwen2DecoderLayer);

class Qwen2ModelImpl : public torch::nn::Module {
 public:
  explicit Qwen2ModelImpl(const LlmConfig& config);
  // inputs_embeds [B, T, H] → final hidden state after the final norm [B, T, H].
  at::Tensor forward(const at::Tensor& inputs_embeds, const at::Tensor& attention_mask = {});
  // Generation (inference): the next positions of every sample, appended to CACHE (one LayerCache per layer).
  // cos and sin [B, 1, T, head_dim] are the RoPE values at each sample's positions; mask [B, 1, T, cached + T]
  // says which cached or new positions each new one sees.
  at::Tensor forward_cached(const at::Tensor& inputs_embeds, const at::Tensor& cos, const at::Tensor& sin,
                            const AttentionMask& mask, std::vector<LayerCache>& cache);
  // Empty caches for BATCH sequences of up to CAPACITY positions, in DTYPE on DEVICE.
  std::vector<LayerCache> make_cache(int64_t batch, int64_t capacity, at::ScalarType dtype, at::Device device) const;

  // Recompute each decoder layer in the backward pass instead of keeping its activations.
  bool activation_checkpointing = false;
  // With checkpointing, on a GPU and without padding: replay the layers as CUDA graphs (checkpoint_graphs.h), on
  // the sequence padded to a multiple of kGraphTokenBucket.
  bool cuda_graphs = false;

  torch::nn::Embedding embed_tokens{nullptr};
  torch::nn::ModuleList layers{nullptr};
  RMSNorm norm{nullptr};

 private:
  LlmConfig config_;
  CheckpointGraphs layer_graphs_;
};
TORCH_MODULE(Qwen2Model);

class Qwen2ForCausalLMImpl : public torch::nn::Module {
 public:
  explicit Qwen2ForCausalLMImpl(const LlmConfig& config);
  // Embeddings of token ids [B, T]; ids outside the vocabulary throw naming the position.
  at::Tensor embed(const at::Tensor& input_ids);
  // hidden [..., H] → logits [..., vocab] (lm_head, or the embedding matrix when tied).
  at::Tensor logits(const at::Tensor& hidden);
  const LlmConfig& config() const { return config_; }

  Qwen2Model model{nullptr};
  torch::nn::Linear lm_head{nullptr};  // null when tie_word_embeddings

 private:
  LlmConfig config_;
};
TORCH_MODULE(Qwen2ForCausalLM);

}  // namespace vesseltune::model
