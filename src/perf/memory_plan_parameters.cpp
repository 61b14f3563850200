// The memory plan's parameter list: every parameter the model code registers, with its shape, in
// named_parameters() order (intern_vit.cpp, projector.cpp, qwen2.cpp, sa2va_vision_language.cpp, sam2/*.cpp; a
// module's own parameters come before its children's). test_memory_plan compares it with built models key by key.
#include <torch/nn/module.h>

#include "memory_plan_parts.h"
#include "vesseltune/core/check.h"
#include "vesseltune/model/lora.h"
#include "vesseltune/model/qwen2.h"
#include "vesseltune/optim/zero_optimizer.h"

namespace vesseltune::perf::plan {
namespace {

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

}  // namespace

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
  // The meta model has no Embedding modules: name the one that setup::build_model gives sparse gradients.
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

}  // namespace vesseltune::perf::plan
