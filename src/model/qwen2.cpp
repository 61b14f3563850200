#include "vesseltune/model/qwen2.h"

#include <torch/torch.h>

#include <cmath>

#include "vesseltune/core/check.h"
#include "vesseltune/core/torch_compat.h"
#include "vesseltune/model/activation_checkpoint.h"

namespace vesseltune::model {
namespace {

at::Tensor rotate_half(const at::Tensor& x) {
  const int64_t half = x.size(-1) / 2;
  return at::cat({-x.slice(-1, half), x.slice(-1, 0, half)}, -1);
}

}  // namespace

AttentionMask make_causal_mask(const at::Tensor& attention_mask, int64_t tokens) {
  if (!attention_mask.defined()) return {};
  VT_CHECK(attention_mask.dim() == 2 && attention_mask.size(1) == tokens, "attention_mask must be [batch, ", tokens,
           "], got ", attention_mask.sizes());
  at::Tensor keys = attention_mask.to(at::kBool);
  if (keys.all().item<bool>()) return {};  // no padding: the causal kernels need no mask
  at::Tensor causal = at::ones({tokens, tokens}, keys.options()).tril();
  return {at::logical_and(causal.unsqueeze(0).unsqueeze(0), keys.unsqueeze(1).unsqueeze(2))};
}

std::pair<at::Tensor, at::Tensor> rope_tables(int64_t tokens, int64_t head_dim, double theta, at::Device device) {
  // As transformers: inv_freq = 1 / θ^(2i/d) in fp32, angles = position · inv_freq, duplicated for both halves.
  auto f32 = at::TensorOptions().dtype(at::kFloat).device(device);
  at::Tensor exponent = at::arange(0, head_dim, 2, at::TensorOptions().dtype(at::kLong).device(device)).to(at::kFloat) /
                        static_cast<double>(head_dim);
  at::Tensor inv_freq = 1.0 / at::pow(at::scalar_tensor(theta, f32), exponent);
  at::Tensor angles = at::outer(at::arange(tokens, f32), inv_freq);
  at::Tensor emb = at::cat({angles, angles}, -1);
  return {emb.cos(), emb.sin()};
}

Qwen2AttentionImpl::Qwen2AttentionImpl(const LlmConfig& config)
    : num_heads_(config.num_heads), num_kv_heads_(config.num_kv_heads), head_dim_(config.head_dim()) {
  q_proj = register_module("q_proj", LoraLinear(config.hidden_size, num_heads_ * head_dim_, true));
  k_proj = register_module("k_proj", LoraLinear(config.hidden_size, num_kv_heads_ * head_dim_, true));
  v_proj = register_module("v_proj", LoraLinear(config.hidden_size, num_kv_heads_ * head_dim_, true));
  o_proj = register_module("o_proj", LoraLinear(num_heads_ * head_dim_, config.hidden_size, false));
}

at::Tensor Qwen2AttentionImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                       const AttentionMask& mask, LayerCache* cache) {
  const int64_t b = x.size(0), t = x.size(1);
  at::Tensor q = q_proj(x).view({b, t, num_heads_, head_dim_}).transpose(1, 2);
  at::Tensor k = k_proj(x).view({b, t, num_kv_heads_, head_dim_}).transpose(1, 2);
  at::Tensor v = v_proj(x).view({b, t, num_kv_heads_, head_dim_}).transpose(1, 2);
  const at::Tensor c = cos.to(x.scalar_type()), s = sin.to(x.scalar_type());  // no-ops from Qwen2Model
  q = q * c + rotate_half(q) * s;
  k = k * c + rotate_half(k) * s;
  if (cache != nullptr) {
    // Without a mask: causal over a first chunk, or one new position that sees everything cached.
    VT_CHECK((mask.visible.defined() || cache->length == 0 || t == 1) && cache->length + t <= cache->keys.size(2),
             "attention cache: ", t, " new positions after ", cache->length, " of ", cache->keys.size(2),
             " need a mask and room");
    cache->keys.narrow(2, cache->length, t).copy_(k);
    cache->values.narrow(2, cache->length, t).copy_(v);
    cache->length += t;
    k = cache->keys.narrow(2, 0, cache->length);
    v = cache->values.narrow(2, 0, cache->length);
  }
  // Each KV head serves num_heads / num_kv_heads query heads; the attention kernel shares them.
  const double scale = 1.0 / std::sqrt(static_cast<double>(head_dim_));
  at::Tensor out = mask.visible.defined()
                       ? compat::scaled_dot_product_attention(q, k, v, mask.visible, false, scale)
                       : compat::scaled_dot_product_attention(q, k, v, c10::nullopt, /*is_causal=*/t > 1, scale);
  return o_proj(out.transpose(1, 2).reshape({b, t, num_heads_ * head_dim_}));
}

Qwen2MLPImpl::Qwen2MLPImpl(const LlmConfig& config) {
  gate_proj = register_module("gate_proj", LoraLinear(config.hidden_size, config.intermediate_size, false));
  up_proj = register_module("up_proj", LoraLinear(config.hidden_size, config.intermediate_size, false));
  down_proj = register_module("down_proj", LoraLinear(config.intermediate_size, config.hidden_size, false));
}

at::Tensor Qwen2MLPImpl::forward(const at::Tensor& x) { return down_proj(at::silu(gate_proj(x)) * up_proj(x)); }

Qwen2DecoderLayerImpl::Qwen2DecoderLayerImpl(const LlmConfig& config) {
  input_layernorm = register_module("input_layernorm", RMSNorm(config.hidden_size, config.rms_norm_eps));
  self_attn = register_module("self_attn", Qwen2Attention(config));
  post_attention_layernorm = register_module("post_attention_layernorm", RMSNorm(config.hidden_size, config.rms_norm_eps));
  mlp = register_module("mlp", Qwen2MLP(config));
}

at::Tensor Qwen2DecoderLayerImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                          const AttentionMask& mask, LayerCache* cache) {
  at::Tensor h = x + self_attn->forward(input_layernorm(x), cos, sin, mask, cache);
  return h + mlp(post_attention_layernorm(h));
}

Qwen2ModelImpl::Qwen2ModelImpl(const LlmConfig& config) : config_(config) {
  embed_tokens = register_module("embed_tokens", torch::nn::Embedding(config.vocab_size, config.hidden_size));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_layers; ++i) layers->push_back(Qwen2DecoderLayer(config));
  norm = register_module("norm", RMSNorm(config.hidden_size, config.rms_norm_eps));
}

at::Tensor Qwen2ModelImpl::forward(const at::Tensor& inputs_embeds, const at::Tensor& attention_mask) {
  VT_CHECK(inputs_embeds.dim() == 3 && inputs_embeds.size(2) == config_.hidden_size,
           "language_model: inputs_embeds must be [batch, tokens, ", config_.hidden_size, "], got ", inputs_embeds.sizes());
  const int64_t tokens = inputs_embeds.size(1);
  VT_CHECK(tokens <= config_.max_position_embeddings, "language_model: ", tokens,
           " tokens exceed max_position_embeddings ", config_.max_position_embeddings);
  const AttentionMask mask = make_causal_mask(attention_mask, tokens);
  const bool checkpointed = activation_checkpointing && is_training();
  // A padding mask differs from batch to batch, and the graphs keep what they were captured with.
  const bool graphed = checkpointed && cuda_graphs && !mask.visible.defined() &&
                       CheckpointGraphs::can_replay(inputs_embeds);
  const int64_t length = graphed ? graphed_token_count(tokens) : tokens;
  // In the activations' dtype once here, not in every layer (transformers converts them once, too).
  auto [cos32, sin32] = rope_tables(length, config_.head_dim(), config_.rope_theta, inputs_embeds.device());
  const at::Tensor cos = cos32.to(inputs_embeds.scalar_type()), sin = sin32.to(inputs_embeds.scalar_type());
  at::Tensor x = length > tokens ? at::constant_pad_nd(inputs_embeds, {0, 0, 0, length - tokens}) : inputs_embeds;
  for (size_t i = 0; i < layers->size(); ++i) {
    auto layer = std::static_pointer_cast<Qwen2DecoderLayerImpl>(layers->ptr(i));
    if (graphed) {
      const auto layer_forward = [layer](const at::Tensor& input, const std::vector<at::Tensor>& rope) {
        return layer->forward(input, rope[0], rope[1], AttentionMask{});
      };
      x = layer_graphs_.run(i, *layer, layer_forward, x, {cos, sin});
    } else if (checkpointed) {
      x = checkpoint([layer, cos = cos, sin = sin, mask](const at::Tensor& input) {
        return layer->forward(input, cos, sin, mask);
      }, x);
    } else {
      x = layer->forward(x, cos, sin, mask);
    }
  }
  return norm(length > tokens ? x.narrow(1, 0, tokens) : x);
}

at::Tensor Qwen2ModelImpl::forward_cached(const at::Tensor& inputs_embeds, const at::Tensor& cos, const at::Tensor& sin,
                                         const AttentionMask& mask, std::vector<LayerCache>& cache) {
  VT_CHECK(cache.size() == layers->size(), "language_model: a cache of ", cache.size(), " layers for ", layers->size());
  at::Tensor x = inputs_embeds;
  for (size_t i = 0; i < layers->size(); ++i) {
    x = layers->at<Qwen2DecoderLayerImpl>(i).forward(x, cos, sin, mask, &cache[i]);
  }
  return norm(x);
}

std::vector<LayerCache> Qwen2ModelImpl::make_cache(int64_t batch, int64_t capacity, at::ScalarType dtype,
                                                  at::Device device) const {
  VT_CHECK(capacity <= config_.max_position_embeddings, "language_model: ", capacity,
           " positions exceed max_position_embeddings ", config_.max_position_embeddings);
  const auto options = at::TensorOptions().dtype(dtype).device(device);
  std::vector<LayerCache> cache(layers->size());
  for (LayerCache& layer : cache) {
    layer.keys = at::empty({batch, config_.num_kv_heads, capacity, config_.head_dim()}, options);
    layer.values = at::empty_like(layer.keys);
  }
  return cache;
}

Qwen2ForCausalLMImpl::Qwen2ForCausalLMImpl(const LlmConfig& config) : config_(config) {
  model = register_module("model", Qwen2Model(config));
  if (!config.tie_word_embeddings) {
    lm_head = register_module("lm_head",
                              torch::nn::Linear(torch::nn::LinearOptions(config.hidden_size, config.vocab_size).bias(false)));
  }
}

at::Tensor Qwen2ForCausalLMImpl::embed(const at::Tensor& input_ids) {
  VT_CHECK(input_ids.scalar_type() == at::kLong, "language_model: input_ids must be int64, got ", input_ids.scalar_type());
  if (input_ids.numel() > 0) {
    at::Tensor bad = at::logical_or(input_ids < 0, input_ids >= config_.vocab_size);
    if (bad.any().item<bool>()) {
      at::Tensor index = bad.nonzero()[0].cpu();  // first offending position, one coordinate per dimension
      std::string position;
      for (int64_t d = 0; d < index.numel(); ++d) position += (d ? "," : "") + std::to_string(index[d].item<int64_t>());
      VT_FAIL("language_model: token id ", input_ids.index({bad})[0].item<int64_t>(), " at input_ids[", position,
              "] is outside the vocabulary of ", config_.vocab_size);
    }
  }
  return model->embed_tokens(input_ids);
}

at::Tensor Qwen2ForCausalLMImpl::logits(const at::Tensor& hidden) {
  return lm_head ? lm_head(hidden) : at::linear(hidden, model->embed_tokens->weight);
}

}  // namespace vesseltune::model
