// Per-GPU memory plan. Everything is derived from the configuration; nothing is allocated.
//
// Parameters (exact). plan_parameters() lists every parameter the model code registers, with its shape, in
// named_parameters() order (intern_vit.cpp, projector.cpp, qwen2.cpp, sa2va_vision_language.cpp, sam2/*.cpp;
// a module's own parameters come before its children's). The list becomes a tree of meta tensors so that
// model::set_trainable and optim::trainable_parameters decide trainability and parameter groups exactly as for
// the real model; which LoraLinear layers get an adapter follows model::apply_lora's rule (scope prefix and
// last key component). test_memory_plan compares the list with built models key by key.
//
// Optimizer (exact, e = 2 bytes in bf16, 4 in fp32). optim::FlatLayout is built from the trainable tensors,
// giving the padded flat size F and this rank's shard S; ZeroOptimizer then allocates (zero_optimizer.cpp):
//   device: flat parameters F·e (the trainable weights live there), flat gradients F·e, reduced shard S·e
//           (stage >= 1), fp32 master + exp_avg + exp_avg_sq 3·(S-H)·4
//   host:   3·H·4 and the pinned staging of gradients and parameters 2·H·e (twice with zero.delayed_update),
//           where H is the offloaded part of the shard: 0 (offload none), S (offload cpu), or offload_ratio·S
// There are no separate communication buckets: buckets are views of the flat buffers.
//
// Activations (an estimate). Per micro-step, with b samples of t tiles: N = b·t tiles, M = b·(256·t + text)
// tokens. Autograd keeps a tensor only where a gradient needs it, so frozen layers without LoRA record nothing
// (the frozen ViT and SAM2 image encoder leave only forward transients). Saved per token and decoder layer
// without checkpointing (H hidden, I intermediate, r LoRA rank, bool dropout masks):
//   RMSNorms 2·(4H + 4)   (fp32 copy of the input and 1/rms; frozen weights need nothing else)
//   attention 4eH + 4·heads + 2e·head_dim   (q, k, v repeated to all heads, output, log-sum-exp, RoPE tables;
//             an upper bound where the attention kernel shares the KV heads)
//   SwiGLU 3eI   (silu input and both factors of the product)
//   per LoRA layer with input width d: e·r + (1 + e)·d with dropout (mask and dropped input), else e·r plus
//   the layer's input once per distinct input (normed, attention output, normed, product)
// With checkpointing a layer keeps only its input (eH per token) and one layer is recomputed at a time.
// mlp1 (trainable) keeps e·(2·4096 + 2H) per image token. SAM2: 16·(S/4)²·C₁·e forward transient per image,
// 9·(S/16)²·d·e saved in the mask decoder per prompt (one [SEG] per sample assumed).
// With model.cuda_graphs the frozen ViT's and SAM2 image encoder's transients live in the graphs' pools instead,
// reserved for the whole run (graph_pool_bytes), and leave the moments below; with checkpointing the decoder
// layers' graphs add their pools (graph_pool_bytes), and the sequence is padded to kGraphTokenBucket tokens.
// The peak is the largest of these moments of a micro-step, each on top of weights and the flat buffers:
//   ViT forward transient | LLM saved + SAM2 image encoder | start of backward: LLM saved + decoder saved +
//   the fresh gradient of the largest trainable tensor (lm_head [V, H], before it is added into the flat
//   buffer) | checkpointed recompute: layer inputs + one layer | end: the fresh gradient of the largest tensor
//   (embed_tokens when tied; untied it trains with sparse rows, a few MB).
// Calibration: bench/NOTES.md, H200, bf16, LoRA r128, batch 1, text 56 tokens, forward + backward without an
// optimizer (autograd holds .grad, so the moment that peaks differs from training). Without checkpointing the
// measured peak is weights + the start-of-backward moment; with it, weights + every trainable gradient (the
// end of backward). Predicted vs measured, GiB:
//   sa2va-4b + hiera-large, ckpt off, 1 / 7 tiles: 10.37 / 19.21 vs 10.42 / 19.31
//   sa2va-4b VL half,       ckpt off, 1 / 7 tiles:  9.96 / 18.81 vs  9.99 / 18.89
//   sa2va-1b VL half,       ckpt off, 1 / 7 tiles:  2.90 /  5.55 vs  2.79 /  5.53
//   ckpt on: sa2va-4b whole 9.62 vs 9.62 / 9.64, VL half 9.21 vs 9.20 / 9.23, sa2va-1b VL half 2.74 vs 2.64 / 2.66
// i.e. within 0.11 GiB (4 % on the 1b, 1 % on the 4b). kSlackBytes, the 0.20 GiB in buffer_bytes, is what the
// modelled tensors leave unexplained (cuBLAS / attention workspaces, allocator rounding; fitted: 0.12 GiB on the
// 1b, 0.22 on the 4b). Not measured: the ZeRO moments (the fresh gradients on top of the flat buffer, the
// recompute transients), a trainable ViT (estimated as if every layer input were saved), micro-batches above 1,
// NCCL's own buffers (left to the safety margin).
#include "vesseltune/perf/memory_plan.h"

#include <torch/nn/module.h>

#include <algorithm>
#include <cstdio>
#include <functional>

#include "vesseltune/core/check.h"
#include "vesseltune/model/lora.h"
#include "vesseltune/model/qwen2.h"
#include "vesseltune/optim/flat_layout.h"
#include "vesseltune/optim/zero_optimizer.h"
#include "vesseltune/setup/model_setup.h"

namespace vesseltune::perf {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;
// Workspaces and allocator rounding seen in every measured peak beyond the modelled tensors (see top).
constexpr int64_t kSlackBytes = static_cast<int64_t>(0.20 * kGiB);
// SAM2 calibration (bench/NOTES.md, hiera-large alone: 1 image × 1 prompt 0.70 GiB, 2 × 5 prompts 1.15 GiB):
// image-encoder transient in stage-1 feature maps per image, decoder saved tensors in d_model maps per prompt.
constexpr int64_t kSam2EncoderMaps = 16;
constexpr int64_t kSam2DecoderMaps = 9;

// ---------------------------------------------------------------------------------------------------------
// Parameter list, in the model code's registration order.

class ParameterList {
 public:
  explicit ParameterList(const PlanInputs& in) : in_(in) {}

  void add(const std::string& key, std::vector<int64_t> shape) { params_.push_back({key, std::move(shape), false}); }
  void linear(const std::string& key, int64_t in, int64_t out, bool bias = true) {
    add(key + ".weight", {out, in});
    if (bias) add(key + ".bias", {out});
  }
  // A model::LoraLinear: nn.Linear keys, then the adapter where model::apply_lora would add one.
  void lora_linear(const std::string& key, int64_t in, int64_t out, bool bias) {
    linear(key, in, out, bias);
    if (!has_adapter(key)) return;
    add(key + ".lora_A.weight", {in_.model.lora.r, in});
    add(key + ".lora_B.weight", {out, in_.model.lora.r});
  }
  void norm(const std::string& key, int64_t size, bool bias = true) {
    add(key + ".weight", {size});
    if (bias) add(key + ".bias", {size});
  }
  void conv(const std::string& key, int64_t in, int64_t out, int64_t kernel) {
    add(key + ".weight", {out, in, kernel, kernel});
    add(key + ".bias", {out});
  }
  void conv_transpose(const std::string& key, int64_t in, int64_t out, int64_t kernel) {
    add(key + ".weight", {in, out, kernel, kernel});
    add(key + ".bias", {out});
  }
  void embedding(const std::string& key, int64_t count, int64_t size) { add(key + ".weight", {count, size}); }
  // model::sam2::Mlp: layers.0 .. layers.{n-1}.
  void sam2_mlp(const std::string& key, int64_t in, int64_t hidden, int64_t out, int64_t layers) {
    for (int64_t i = 0; i < layers; ++i) {
      linear(key + ".layers." + std::to_string(i), i == 0 ? in : hidden, i == layers - 1 ? out : hidden);
    }
  }

  bool has_adapter(const std::string& key) const {
    if (!in_.model.use_llm_lora) return false;
    const model::LoraConfig& lora = in_.model.lora;
    const std::string name = key.substr(key.rfind('.') + 1);
    return key.compare(0, lora.scope.size(), lora.scope) == 0 &&
           std::find(lora.target_modules.begin(), lora.target_modules.end(), name) != lora.target_modules.end();
  }
  std::vector<PlannedParameter> take() { return std::move(params_); }

 private:
  const PlanInputs& in_;
  std::vector<PlannedParameter> params_;
};

void add_vision(ParameterList& list, const model::VisionConfig& v) {
  const std::string p = "vision_model.";
  const int64_t c = v.hidden_size, side = v.patches_per_side();
  list.add(p + "embeddings.class_embedding", {1, 1, c});
  list.add(p + "embeddings.position_embedding", {1, 1 + side * side, c});
  list.conv(p + "embeddings.patch_embedding", v.num_channels, c, v.patch_size);
  for (int64_t i = 0; i < v.num_layers; ++i) {
    const std::string layer = p + "encoder.layers." + std::to_string(i) + ".";
    list.add(layer + "ls1", {c});
    list.add(layer + "ls2", {c});
    list.norm(layer + "norm1", c, !v.rms_norm);
    list.lora_linear(layer + "attn.qkv", c, 3 * c, v.qkv_bias);
    list.lora_linear(layer + "attn.proj", c, c, true);
    if (v.qk_norm) {
      list.norm(layer + "attn.q_norm", c, false);
      list.norm(layer + "attn.k_norm", c, false);
    }
    list.norm(layer + "norm2", c, !v.rms_norm);
    list.lora_linear(layer + "mlp.fc1", c, v.intermediate_size, true);
    list.lora_linear(layer + "mlp.fc2", v.intermediate_size, c, true);
  }
}

void add_language_model(ParameterList& list, const model::LlmConfig& l) {
  const std::string p = "language_model.model.";
  const int64_t h = l.hidden_size, q = l.num_heads * l.head_dim(), kv = l.num_kv_heads * l.head_dim();
  list.embedding(p + "embed_tokens", l.vocab_size, h);
  for (int64_t i = 0; i < l.num_layers; ++i) {
    const std::string layer = p + "layers." + std::to_string(i) + ".";
    list.norm(layer + "input_layernorm", h, false);
    list.lora_linear(layer + "self_attn.q_proj", h, q, true);
    list.lora_linear(layer + "self_attn.k_proj", h, kv, true);
    list.lora_linear(layer + "self_attn.v_proj", h, kv, true);
    list.lora_linear(layer + "self_attn.o_proj", q, h, false);
    list.norm(layer + "post_attention_layernorm", h, false);
    list.lora_linear(layer + "mlp.gate_proj", h, l.intermediate_size, false);
    list.lora_linear(layer + "mlp.up_proj", h, l.intermediate_size, false);
    list.lora_linear(layer + "mlp.down_proj", l.intermediate_size, h, false);
  }
  list.norm(p + "norm", h, false);
  if (!l.tie_word_embeddings) list.linear("language_model.lm_head", h, l.vocab_size, false);
}

void add_decoder_attention(ParameterList& list, const std::string& key, int64_t c, int64_t downsample) {
  const int64_t internal = c / downsample;
  list.linear(key + ".q_proj", c, internal);
  list.linear(key + ".k_proj", c, internal);
  list.linear(key + ".v_proj", c, internal);
  list.linear(key + ".out_proj", internal, c);
}

void add_sam2(ParameterList& list, const model::sam2::Sam2Config& s) {
  const std::string p = "grounding_encoder.sam2_model.";
  const model::sam2::HieraConfig& t = s.trunk;
  const int64_t c = s.d_model;
  list.add(p + "no_mem_embed", {1, 1, c});

  const std::string trunk = p + "image_encoder.trunk.";
  list.add(trunk + "pos_embed", {1, t.embed_dim, t.window_pos_embed_bkg_spatial_size[0],
                                 t.window_pos_embed_bkg_spatial_size[1]});
  list.add(trunk + "pos_embed_window", {1, t.embed_dim, t.window_spec[0], t.window_spec[0]});
  list.conv(trunk + "patch_embed.proj", 3, t.embed_dim, 7);
  // Widths as HieraImpl's constructor sets them: the first block of each later stage doubles the width.
  const std::vector<int64_t> ends = t.stage_ends();
  int64_t dim = t.embed_dim;
  size_t stage = 0;
  for (int64_t i = 0; i < t.num_blocks(); ++i) {
    int64_t dim_out = dim;
    if (i > 0 && i - 1 == ends[stage]) {
      dim_out = 2 * dim;
      ++stage;
    }
    const std::string block = trunk + "blocks." + std::to_string(i) + ".";
    const auto hidden = static_cast<int64_t>(static_cast<double>(dim_out) * t.mlp_ratio);
    list.norm(block + "norm1", dim);
    list.linear(block + "attn.qkv", dim, 3 * dim_out);
    list.linear(block + "attn.proj", dim_out, dim_out);
    list.norm(block + "norm2", dim_out);
    list.sam2_mlp(block + "mlp", dim_out, hidden, dim_out, 2);
    if (dim != dim_out) list.linear(block + "proj", dim, dim_out);
    dim = dim_out;
  }
  const std::vector<int64_t> dims = t.stage_dims();
  for (size_t i = 0; i < dims.size(); ++i) {  // lowest resolution (widest) first
    list.conv(p + "image_encoder.neck.convs." + std::to_string(i) + ".conv", dims[dims.size() - 1 - i], c, 1);
  }

  const std::string prompt = p + "sam_prompt_encoder.";
  for (int i = 0; i < 4; ++i) list.embedding(prompt + "point_embeddings." + std::to_string(i), 1, c);
  list.embedding(prompt + "not_a_point_embed", 1, c);
  const int64_t m = s.mask_in_chans;
  list.conv(prompt + "mask_downscaling.0", 1, m / 4, 2);
  list.norm(prompt + "mask_downscaling.1", m / 4);
  list.conv(prompt + "mask_downscaling.3", m / 4, m, 2);
  list.norm(prompt + "mask_downscaling.4", m);
  list.conv(prompt + "mask_downscaling.6", m, c, 1);
  list.embedding(prompt + "no_mask_embed", 1, c);

  const std::string decoder = p + "sam_mask_decoder.";
  const std::string transformer = decoder + "transformer.";
  for (int64_t i = 0; i < s.decoder_depth; ++i) {
    const std::string layer = transformer + "layers." + std::to_string(i) + ".";
    add_decoder_attention(list, layer + "self_attn", c, 1);
    list.norm(layer + "norm1", c);
    add_decoder_attention(list, layer + "cross_attn_token_to_image", c, s.attention_downsample_rate);
    list.norm(layer + "norm2", c);
    list.sam2_mlp(layer + "mlp", c, s.decoder_mlp_dim, c, 2);
    list.norm(layer + "norm3", c);
    list.norm(layer + "norm4", c);
    add_decoder_attention(list, layer + "cross_attn_image_to_token", c, s.attention_downsample_rate);
  }
  add_decoder_attention(list, transformer + "final_attn_token_to_image", c, s.attention_downsample_rate);
  list.norm(transformer + "norm_final_attn", c);
  const int64_t mask_tokens = s.num_multimask_outputs + 1;
  list.embedding(decoder + "iou_token", 1, c);
  list.embedding(decoder + "mask_tokens", mask_tokens, c);
  list.embedding(decoder + "obj_score_token", 1, c);
  list.conv_transpose(decoder + "output_upscaling.0", c, c / 4, 2);
  list.norm(decoder + "output_upscaling.1", c / 4);
  list.conv_transpose(decoder + "output_upscaling.3", c / 4, c / 8, 2);
  list.conv(decoder + "conv_s0", c, c / 8, 1);
  list.conv(decoder + "conv_s1", c, c / 4, 1);
  for (int64_t i = 0; i < mask_tokens; ++i) {
    list.sam2_mlp(decoder + "output_hypernetworks_mlps." + std::to_string(i), c, c, c / 8, 3);
  }
  list.sam2_mlp(decoder + "iou_prediction_head", c, s.iou_head_hidden_dim, mask_tokens, s.iou_head_depth);
  list.sam2_mlp(decoder + "pred_obj_score_head", c, c, 1, 3);
}

// The parameters as meta tensors (no memory) in a module tree with the model's keys.
std::shared_ptr<torch::nn::Module> meta_model(const std::vector<PlannedParameter>& params) {
  auto root = std::make_shared<torch::nn::Module>();
  for (const auto& param : params) {
    torch::nn::Module* module = root.get();
    size_t begin = 0;
    for (size_t dot = param.name.find('.'); dot != std::string::npos; dot = param.name.find('.', begin)) {
      const std::string part = param.name.substr(begin, dot - begin);
      const auto children = module->named_children();
      const auto* child = children.find(part);
      module = child ? child->get() : module->register_module(part, std::make_shared<torch::nn::Module>()).get();
      begin = dot + 1;
    }
    module->register_parameter(param.name.substr(begin), at::empty(param.shape, at::TensorOptions().device(at::kMeta)));
  }
  return root;
}

// ---------------------------------------------------------------------------------------------------------
// Activations.

bool has_prefix(const std::string& key, const std::string& prefix) { return key.compare(0, prefix.size(), prefix) == 0; }

// What the activation estimate needs to know of the parameter list.
struct TrainableParts {
  bool vision = false;         // any vision_model parameter trains (not Sa2VA's recipe)
  bool mlp1 = false;
  bool llm_base = false;       // a decoder layer's own weights train (full fine-tuning of the layers)
  bool sam2_encoder = false;   // SAM2's image encoder trains (model.extra_trainable)
  int64_t lm_head_numel = 0;   // trainable lm_head (the first fresh gradient of the backward pass), else 0
  int64_t largest_numel = 0;   // largest trainable tensor with a dense gradient (a tied embed_tokens: the last
                               // fresh gradient)
  int64_t llm_layer_numel = 0; // trainable elements of one decoder layer (layer 0: they are all alike)
};

TrainableParts trainable_parts(const std::vector<PlannedParameter>& params) {
  TrainableParts parts;
  for (const auto& p : params) {
    if (!p.trainable) continue;
    const bool lora = p.name.find(".lora_") != std::string::npos;
    parts.vision |= has_prefix(p.name, "vision_model.");
    parts.mlp1 |= has_prefix(p.name, "mlp1.");
    parts.sam2_encoder |= has_prefix(p.name, "grounding_encoder.sam2_model.image_encoder.");
    parts.llm_base |= has_prefix(p.name, "language_model.model.layers.") && !lora;
    if (has_prefix(p.name, "language_model.model.layers.0.")) parts.llm_layer_numel += p.numel();
    if (has_prefix(p.name, "language_model.lm_head.")) parts.lm_head_numel = p.numel();
    if (!p.sparse_rows) parts.largest_numel = std::max(parts.largest_numel, p.numel());
  }
  return parts;
}

// Bytes saved per token by one Qwen2 decoder layer without checkpointing (formula at the top).
int64_t llm_layer_bytes_per_token(const PlanInputs& in, const ParameterList& list, const TrainableParts& parts,
                                  int64_t e) {
  const model::LlmConfig& l = in.model.llm;
  const int64_t h = l.hidden_size, inter = l.intermediate_size, r = in.model.lora.r;
  const bool dropout = in.model.lora.dropout > 0;
  int64_t bytes = 2 * (4 * h + 4) + 4 * e * h + 4 * l.num_heads + 2 * e * l.head_dim() + 3 * e * inter;
  if (parts.llm_base) bytes += 2 * e * h;  // normed inputs, for the norm weights' gradients
  struct Input {
    int64_t width;
    std::vector<std::string> linears;
  };
  const std::vector<Input> inputs = {{h, {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"}},
                                     {h, {"self_attn.o_proj"}},
                                     {h, {"mlp.gate_proj", "mlp.up_proj"}},
                                     {inter, {"mlp.down_proj"}}};
  for (const Input& input : inputs) {
    int64_t adapters = 0;
    for (const std::string& name : input.linears) adapters += list.has_adapter("language_model.model.layers.0." + name);
    // The shared input is kept once by trainable base weights or by dropout-free adapters' lora_A.
    if (parts.llm_base || (adapters > 0 && !dropout)) bytes += e * input.width;
    bytes += adapters * (e * r + (dropout ? (1 + e) * input.width : 0));
  }
  return bytes;
}

bool graphed_vit(const PlanInputs& in, const TrainableParts& parts) { return in.cuda_graphs && !parts.vision; }
bool graphed_sam2_encoder(const PlanInputs& in, const TrainableParts& parts) {
  return in.cuda_graphs && !parts.sam2_encoder;
}
bool graphed_llm(const PlanInputs& in) { return in.cuda_graphs && in.model.activation_checkpointing; }

// Tokens through the LLM per micro-step: image tokens of every tile and the text (padded for graphed layers).
int64_t llm_tokens(const PlanInputs& in) {
  const int64_t tokens = in.tiles_per_sample * in.model.image_tokens_per_tile() + in.text_tokens;
  return in.micro_batch * (graphed_llm(in) ? model::graphed_token_count(tokens) : tokens);
}

// A frozen ViT only passes through: one layer's working set (residual, branch, MLP hidden twice).
int64_t vit_transient_bytes(const PlanInputs& in) {
  const model::VisionConfig& v = in.model.vision;
  const int64_t vit_tokens = in.micro_batch * in.tiles_per_sample * (1 + v.patches_per_side() * v.patches_per_side());
  return vit_tokens * (in.bf16 ? 2 : 4) * (4 * v.hidden_size + 2 * v.intermediate_size);
}

int64_t sam2_encoder_transient_bytes(const PlanInputs& in) {
  const model::sam2::Sam2Config& s = in.sam2;
  const int64_t stage1 = (s.image_size / 4) * (s.image_size / 4) * s.trunk.embed_dim;
  return in.micro_batch * kSam2EncoderMaps * stage1 * (in.bf16 ? 2 : 4);
}

// Gradients of a few [tokens, I] tensors in the backward pass of one recomputed layer, beyond its saved tensors.
int64_t recompute_gradient_bytes(const PlanInputs& in) {
  const model::LlmConfig& l = in.model.llm;
  return llm_tokens(in) * (in.bf16 ? 2 : 4) * (3 * l.intermediate_size + 4 * l.hidden_size);
}

// The CUDA graphs' private pools keep working sets reserved for the whole run. Measured on one H200 (sa2va-4b +
// hiera-large, one tile, bench/NOTES.md): the frozen encoders' graphs grew the reserved peak by 0.88 GiB against
// 0.30 GiB of transients, hence the factor 3. The checkpointed decoder layers' graphs (forward and recompute +
// backward of each of 36 layers) are captured on one stream into one pool and reuse each other's blocks: their pool
// holds about one layer's recompute + backward (the reserved peak +0.06 GiB over eager checkpointing, whose
// recomputation needed the same). Those graphs also share static buffers outside the pool: input, output and their
// gradients, and one layer's parameter gradients.
constexpr int64_t kGraphPoolPerTransient = 3;
int64_t graph_pool_bytes(const PlanInputs& in, const ParameterList& list, const TrainableParts& parts) {
  const int64_t e = in.bf16 ? 2 : 4;
  const int64_t encoders = (graphed_vit(in, parts) ? vit_transient_bytes(in) : 0) +
                           (graphed_sam2_encoder(in, parts) ? sam2_encoder_transient_bytes(in) : 0);
  int64_t layers = 0;
  if (graphed_llm(in)) {
    const int64_t tokens = llm_tokens(in);
    const int64_t layer = tokens * llm_layer_bytes_per_token(in, list, parts, e) + recompute_gradient_bytes(in);
    layers = layer + 4 * tokens * e * in.model.llm.hidden_size + e * parts.llm_layer_numel;
  }
  return kGraphPoolPerTransient * encoders + layers;
}

int64_t activation_bytes(const PlanInputs& in, const ParameterList& list, const TrainableParts& parts) {
  const int64_t e = in.bf16 ? 2 : 4;
  const model::Sa2VAConfig& m = in.model;
  const model::VisionConfig& v = m.vision;
  const bool checkpointing = m.activation_checkpointing;
  const int64_t tiles = in.micro_batch * in.tiles_per_sample;
  const int64_t vit_tokens = tiles * (1 + v.patches_per_side() * v.patches_per_side());
  const int64_t image_tokens = tiles * m.image_tokens_per_tile();
  const int64_t tokens = llm_tokens(in);
  const int64_t h = m.llm.hidden_size;

  // One layer's saved tensors, and what stays for all layers until the backward pass.
  const int64_t llm_layer = tokens * llm_layer_bytes_per_token(in, list, parts, e);
  const int64_t vit_layer = parts.vision ? vit_tokens * e * (11 * v.hidden_size + 2 * v.intermediate_size) : 0;
  const int64_t layer_inputs = m.llm.num_layers * tokens * e * h +
                               (parts.vision ? v.num_layers * vit_tokens * e * v.hidden_size : 0);
  const int64_t kept = checkpointing ? layer_inputs : m.llm.num_layers * llm_layer + v.num_layers * vit_layer;
  const int64_t mlp1 = parts.mlp1 || parts.vision ? image_tokens * e * (2 * m.shuffled_vision_size() + 2 * h) : 0;

  const int64_t vit_transient = vit_transient_bytes(in);
  const int64_t sam2_encoder = sam2_encoder_transient_bytes(in);
  const model::sam2::Sam2Config& s = in.sam2;
  const int64_t embedding = s.image_embedding_size() * s.image_embedding_size() * s.d_model;
  const int64_t sam2_decoder = in.micro_batch * kSam2DecoderMaps * embedding * e;
  // Backward of one recomputed layer: its saved tensors plus gradients of a few [tokens, I] tensors. (Graphed
  // decoder layers do that in their pool, but each shape's first sighting runs eagerly, so it stays here.)
  const int64_t recompute = std::max(llm_layer, vit_layer) + recompute_gradient_bytes(in);

  // Graphed frozen encoders keep their transients in the graphs' pools (graph_pool_bytes), outside these moments.
  int64_t peak = graphed_vit(in, parts) ? 0 : vit_transient;
  peak = std::max(peak, kept + mlp1 + (graphed_sam2_encoder(in, parts) ? 0 : sam2_encoder));
  peak = std::max(peak, kept + mlp1 + sam2_decoder + e * parts.lm_head_numel);
  if (checkpointing) peak = std::max(peak, layer_inputs + mlp1 + sam2_decoder + recompute);
  peak = std::max(peak, e * parts.largest_numel);
  return peak;
}

// ---------------------------------------------------------------------------------------------------------

void check_inputs(const PlanInputs& in) {
  in.model.validate();
  in.zero.validate();
  VT_CHECK(in.world_size >= 1, "memory plan: world size must be >= 1, got ", in.world_size);
  VT_CHECK(in.micro_batch >= 1, "memory plan: train.micro_batch must be >= 1, got ", in.micro_batch);
  const int64_t most = in.model.max_dynamic_patch + (in.model.use_thumbnail ? 1 : 0);
  VT_CHECK(in.tiles_per_sample >= 1 && in.tiles_per_sample <= most, "memory plan: ", in.tiles_per_sample,
           " tiles per sample, expected 1 .. ", most, " (max_dynamic_patch ", in.model.max_dynamic_patch,
           in.model.use_thumbnail ? " + thumbnail)" : ")");
  VT_CHECK(in.text_tokens >= 0, "memory plan: text_tokens must be >= 0, got ", in.text_tokens);
}

struct Parameters {
  std::vector<PlannedParameter> all;
  std::vector<optim::TensorSpec> trainable;  // what the ZeRO optimizer lays out
};

Parameters list_parameters(const PlanInputs& in, ParameterList& list) {
  add_vision(list, in.model.vision);
  list.norm("mlp1.0", in.model.shuffled_vision_size());
  list.linear("mlp1.1", in.model.shuffled_vision_size(), in.model.llm.hidden_size);
  list.linear("mlp1.3", in.model.llm.hidden_size, in.model.llm.hidden_size);
  add_language_model(list, in.model.llm);
  list.linear("text_hidden_fcs.0", in.model.llm.hidden_size, in.model.llm.hidden_size);
  list.linear("text_hidden_fcs.2", in.model.llm.hidden_size, in.sam2.d_model);  // as Sa2VAModel sizes it
  add_sam2(list, in.sam2);
  Parameters params{list.take(), {}};

  auto meta = meta_model(params.all);
  model::set_trainable(*meta, in.model.trainable_modules);
  const auto flags = meta->named_parameters(/*recurse=*/true);
  VT_CHECK(flags.size() == params.all.size(), "memory plan: parameter keys are not unique");
  // The meta model has no Embedding modules: name the one that train::build_model gives sparse gradients.
  const auto sparse_rows = [&](const std::string& name) {
    return name == "language_model.model.embed_tokens.weight" && model::sparse_embedding_gradient(in.model.llm);
  };
  for (size_t i = 0; i < params.all.size(); ++i) {
    PlannedParameter& p = params.all[i];
    p.trainable = flags[i].value().requires_grad();
    p.sparse_rows = p.trainable && sparse_rows(p.name);
  }
  for (const auto& p : optim::trainable_parameters(*meta)) {
    params.trainable.push_back({p.name, p.tensor.sizes().vec(), p.group, sparse_rows(p.name)});
  }
  return params;
}

std::string gib(int64_t bytes) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f GiB", static_cast<double>(bytes) / kGiB);
  return text;
}

}  // namespace

int64_t PlannedParameter::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<PlannedParameter> plan_parameters(const PlanInputs& in) {
  check_inputs(in);
  ParameterList list(in);
  return list_parameters(in, list).all;
}

MemoryPlan plan_memory(const PlanInputs& in) {
  check_inputs(in);
  ParameterList list(in);
  const Parameters params = list_parameters(in, list);

  MemoryPlan plan;
  int64_t frozen = 0;
  for (const auto& p : params.all) {
    const std::string module = p.name.substr(0, p.name.find('.'));
    if (plan.modules.empty() || plan.modules.back().module != module) plan.modules.push_back({module});
    (p.trainable ? plan.modules.back().trainable : plan.modules.back().frozen) += p.numel();
    if (!p.trainable) frozen += p.numel();
  }

  // Rank 0's shard: every rank owns the same number of elements of every padded bucket.
  const optim::FlatLayout layout(params.trainable, in.zero.reduce_bucket_numel, in.world_size, 0, in.zero.stage >= 1);
  const int64_t e = in.bf16 ? 2 : 4, flat = layout.flat_numel(), shard = layout.shard_numel();
  const int64_t host = in.zero.host_state_numel(shard);  // elements whose state and staging are on the host
  plan.weights_bytes = (frozen + flat) * e;
  plan.gradient_bytes = (layout.gradient_numel() + (in.zero.stage >= 1 ? shard : 0)) * e;
  plan.optimizer_device_bytes = 3 * (shard - host) * 4;
  plan.host_bytes = 3 * host * 4 + (in.zero.delayed_update ? 2 : 1) * 2 * host * e;  // a delayed update: 2 stagings
  const TrainableParts parts = trainable_parts(params.all);
  plan.activation_bytes = activation_bytes(in, list, parts);
  plan.graph_pool_bytes = graph_pool_bytes(in, list, parts);
  plan.buffer_bytes = kSlackBytes;
  plan.device_total_bytes = plan.weights_bytes + plan.gradient_bytes + plan.optimizer_device_bytes +
                            plan.activation_bytes + plan.graph_pool_bytes + plan.buffer_bytes;
  return plan;
}

std::string format_plan(const MemoryPlan& plan, const PlanInputs& in) {
  const int64_t tokens = in.tiles_per_sample * in.model.image_tokens_per_tile() + in.text_tokens;
  std::string out;
  std::string offload = optim::to_string(in.zero.offload);
  if (in.zero.offload == optim::OffloadDevice::cpu && in.zero.offload_ratio != 1.0) {
    char ratio[32];
    std::snprintf(ratio, sizeof ratio, " (ratio %.2f)", in.zero.offload_ratio);
    offload += ratio;
  }
  char line[256];
  std::snprintf(line, sizeof line,
                "memory plan per GPU: %d GPU(s), ZeRO stage %d, offload %s, %s, micro-batch %lld x %lld tiles "
                "(%lld tokens), LoRA %s, activation checkpointing %s\n",
                in.world_size, in.zero.stage, offload.c_str(), in.bf16 ? "bf16" : "fp32",
                static_cast<long long>(in.micro_batch), static_cast<long long>(in.tiles_per_sample),
                static_cast<long long>(tokens),
                in.model.use_llm_lora ? ("r" + std::to_string(in.model.lora.r)).c_str() : "off",
                in.model.activation_checkpointing ? "on" : "off");
  out += line;
  out += setup::format_parameter_counts(plan.modules);
  const std::vector<std::pair<const char*, int64_t>> items = {
      {"weights", plan.weights_bytes},
      {"gradients", plan.gradient_bytes},
      {"optimizer state", plan.optimizer_device_bytes},
      {"activations (est.)", plan.activation_bytes},
      {"CUDA graph pools", plan.graph_pool_bytes},
      {"workspace slack", plan.buffer_bytes},
      {"device total", plan.device_total_bytes},
      {"pinned host", plan.host_bytes}};
  for (const auto& [name, bytes] : items) {
    std::snprintf(line, sizeof line, "  %-20s %14s\n", name, gib(bytes).c_str());
    out += line;
  }
  return out;
}

double safety_margin_gib(double gpu_mem_gib) {
  // ~0.5 GiB CUDA context and library handles, a few hundred MiB of NCCL buffers (neither is in the caching
  // allocator), and 5 % for the allocator's fragmentation (reserved above allocated).
  return 1.0 + 0.05 * gpu_mem_gib;
}

namespace {

bool fits(const PlanInputs& in, double gpu_mem_gib) {
  return static_cast<double>(plan_memory(in).device_total_bytes) / kGiB <= gpu_mem_gib - safety_margin_gib(gpu_mem_gib);
}

// The first candidate (in the order given) that fits, else the last one.
int64_t first_fitting(const std::vector<int64_t>& candidates, const std::function<bool(int64_t)>& fit) {
  for (int64_t candidate : candidates) {
    if (fit(candidate)) return candidate;
  }
  return candidates.back();
}

}  // namespace

FitAdvice advise(const PlanInputs& in, double gpu_mem_gib) {
  FitAdvice advice;
  advice.fits = fits(in, gpu_mem_gib);
  if (advice.fits) return advice;

  // Each step changes one setting of `current` (the earlier suggestions applied); kept when it saves memory.
  PlanInputs current = in;
  auto suggest = [&](const std::string& setting, const std::function<void(PlanInputs&)>& change) {
    if (advice.fits) return;
    PlanInputs next = current;
    change(next);
    const int64_t saved = plan_memory(current).device_total_bytes - plan_memory(next).device_total_bytes;
    if (saved <= 0) return;
    advice.suggestions.push_back(setting + " (saves " + gib(saved) + ")");
    current = next;
    advice.fits = fits(current, gpu_mem_gib);
  };

  if (!current.model.activation_checkpointing) {
    suggest("model.activation_checkpointing: true", [](PlanInputs& p) { p.model.activation_checkpointing = true; });
  }
  if (current.cuda_graphs) suggest("model.cuda_graphs: false", [](PlanInputs& p) { p.cuda_graphs = false; });
  if (current.zero.offload == optim::OffloadDevice::none) {
    suggest("zero.offload_optimizer: cpu", [](PlanInputs& p) { p.zero.offload = optim::OffloadDevice::cpu; });
  }
  if (current.zero.stage < 2) suggest("zero.stage: 2", [](PlanInputs& p) { p.zero.stage = 2; });
  if (current.micro_batch > 1) suggest("train.micro_batch: 1", [](PlanInputs& p) { p.micro_batch = 1; });

  // data.max_tiles N gives N + 1 tiles with the thumbnail (InternVL adds none to a single tile).
  const bool thumbnail = current.model.use_thumbnail;
  auto tiles_of = [thumbnail](int64_t max_tiles) { return max_tiles + (thumbnail && max_tiles > 1 ? 1 : 0); };
  std::vector<int64_t> max_tiles;
  for (int64_t n = current.model.max_dynamic_patch - 1; n >= 1; --n) {
    if (tiles_of(n) < current.tiles_per_sample) max_tiles.push_back(n);
  }
  if (!advice.fits && !max_tiles.empty()) {
    const int64_t n = first_fitting(max_tiles, [&](int64_t c) {
      PlanInputs p = current;
      p.tiles_per_sample = tiles_of(c);
      return fits(p, gpu_mem_gib);
    });
    suggest("data.max_tiles: " + std::to_string(n), [&, n](PlanInputs& p) {
      p.model.max_dynamic_patch = n;
      p.tiles_per_sample = tiles_of(n);
    });
  }

  std::vector<int64_t> ranks;
  for (int64_t r = current.model.lora.r / 2; r >= 8; r /= 2) ranks.push_back(r);
  if (!advice.fits && current.model.use_llm_lora && !ranks.empty()) {
    const int64_t r = first_fitting(ranks, [&](int64_t c) {
      PlanInputs p = current;
      p.model.lora.r = c;
      return fits(p, gpu_mem_gib);
    });
    suggest("model.lora.r: " + std::to_string(r), [r](PlanInputs& p) { p.model.lora.r = r; });
  }

  // With ZeRO stage <= 2 every GPU holds all weights and gradients; more GPUs shrink only the optimizer shard.
  // So they cannot help once the state is offloaded: they are the alternative to offloading it, offered when
  // the other changes made it fit and the user had the state on the GPU.
  if (advice.fits && in.zero.offload == optim::OffloadDevice::none && current.zero.offload == optim::OffloadDevice::cpu) {
    PlanInputs on_device = current;
    on_device.zero.offload = optim::OffloadDevice::none;
    on_device.zero.stage = 2;
    for (int w = std::max(2, current.world_size * 2); w <= 64; w *= 2) {
      PlanInputs more = on_device;
      more.world_size = w;
      if (!fits(more, gpu_mem_gib)) continue;
      const int64_t saved = plan_memory(on_device).device_total_bytes - plan_memory(more).device_total_bytes;
      advice.suggestions.push_back("more GPUs (world size " + std::to_string(w) + ", zero.stage: 2) instead of "
                                   "zero.offload_optimizer: cpu (saves " + gib(saved) + " without offload)");
      break;
    }
  }
  return advice;
}

std::string OffloadChoice::yaml() const {
  std::string text = std::string("zero.offload_optimizer: ") + optim::to_string(device);
  if (device == optim::OffloadDevice::cpu) {
    char ratio_text[48];
    std::snprintf(ratio_text, sizeof ratio_text, ", zero.offload_ratio: %.2f", ratio);
    text += ratio_text;
  }
  return text;
}

OffloadChoice choose_offload(const PlanInputs& in, double gpu_mem_gib) {
  PlanInputs trial = in;
  trial.zero.offload = optim::OffloadDevice::none;
  if (fits(trial, gpu_mem_gib)) return {};
  // Device memory falls as the ratio grows: the first step that fits is the least offload.
  trial.zero.offload = optim::OffloadDevice::cpu;
  for (int twentieths = 1; twentieths < 20; ++twentieths) {
    trial.zero.offload_ratio = twentieths / 20.0;
    if (fits(trial, gpu_mem_gib)) return {optim::OffloadDevice::cpu, trial.zero.offload_ratio};
  }
  return {optim::OffloadDevice::cpu, 1.0};
}

PlanInputs memory_plan_inputs(const setup::TrainConfig& config, int world_size) {
  const setup::ModelShapes shapes = setup::model_shapes(config);
  PlanInputs in;
  in.model = shapes.sa2va;
  in.sam2 = shapes.sam2;
  in.world_size = world_size;
  in.micro_batch = config.train.micro_batch;
  in.tiles_per_sample = config.data.max_tiles + (shapes.sa2va.use_thumbnail && config.data.max_tiles > 1 ? 1 : 0);
  in.zero = config.zero_config();
  in.bf16 = config.model.dtype != "fp32";
  in.cuda_graphs = config.model.cuda_graphs;  // the plan is for GPUs
  return in;
}

}  // namespace vesseltune::perf
