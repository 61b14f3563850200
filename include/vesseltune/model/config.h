#pragma once
// Sa2VA's vision-language configuration: read from a checkpoint's config.json (model_type sa2va_chat:
// vision_config, llm_config, downsample_ratio, template, ps_version, ...) or taken from a named preset with
// the released models' dimensions. Fields not in config.json (LoRA, trainable modules, checkpointing) are
// training settings with Sa2VA's defaults.

#include <cstdint>
#include <string>
#include <vector>

namespace vesseltune::model {

// InternViT (vision_config, model_type intern_vit_6b).
struct VisionConfig {
  int64_t hidden_size = 1024;
  int64_t intermediate_size = 4096;
  int64_t num_layers = 24;
  int64_t num_heads = 16;
  int64_t num_channels = 3;
  int64_t patch_size = 14;
  int64_t image_size = 448;
  double norm_eps = 1e-6;
  bool rms_norm = false;  // norm_type: "layer_norm" (300M) or "rms_norm" (6B)
  bool qkv_bias = true;
  bool qk_norm = false;   // qk_normalization (6B)

  int64_t patches_per_side() const { return image_size / patch_size; }
};

// Qwen2 (llm_config, model_type qwen2).
struct LlmConfig {
  int64_t vocab_size = 151677;
  int64_t hidden_size = 896;
  int64_t intermediate_size = 4864;
  int64_t num_layers = 24;
  int64_t num_heads = 14;
  int64_t num_kv_heads = 2;
  int64_t max_position_embeddings = 32768;
  double rms_norm_eps = 1e-6;
  double rope_theta = 1000000.0;
  bool tie_word_embeddings = false;

  int64_t head_dim() const { return hidden_size / num_heads; }
};

struct LoraConfig {
  int64_t r = 128;
  double alpha = 256;
  double dropout = 0.05;
  // Linear layers whose last name component is one of these get an adapter (PEFT's list semantics),
  // inside modules whose key starts with `scope`.
  std::vector<std::string> target_modules = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                             "down_proj"};
  std::string scope = "language_model.";

  double scale() const { return alpha / static_cast<double>(r); }
};

struct Sa2VAConfig {
  VisionConfig vision;
  LlmConfig llm;
  double downsample_ratio = 0.5;
  std::string ps_version = "v2";
  int64_t select_layer = -1;  // only the last layer (-1) is supported
  std::string template_name = "qwen_chat";
  int64_t min_dynamic_patch = 1;
  int64_t max_dynamic_patch = 12;
  bool use_thumbnail = true;
  int64_t prompt_dim = 256;  // text_hidden_fcs output of the half alone; Sa2VAModel uses its SAM2's d_model
  int64_t max_length = 8192;  // longest token sequence accepted by the forward

  // Ids in the tokenizer; -1 until set (from config.json, or from the tokenizer by the caller).
  int64_t image_context_token_id = -1;
  int64_t seg_token_id = -1;

  // Training settings.
  bool use_llm_lora = true;
  LoraConfig lora;
  // Fully trained modules (key prefixes); everything else except the LoRA adapters is frozen. Prefixes that
  // a model does not have (the SAM2 decoder in the vision-language half alone) are skipped.
  std::vector<std::string> trainable_modules = {"language_model.model.embed_tokens", "language_model.lm_head",
                                                "mlp1", "text_hidden_fcs",
                                                "grounding_encoder.sam2_model.sam_mask_decoder"};
  bool activation_checkpointing = false;
  // SAM2's object-score gate (masks of prompts scored "no object" become -1024). Off, as in Sa2VA: its SAM2
  // subclass leaves the gate out in training and inference (docs/sa2va_fidelity.md). Opt-in only: a gated prompt
  // passes no gradient to the mask decoder.
  bool object_score_gate = false;

  // Tokens per tile after pixel shuffle: (448 / 14 · 0.5)² = 256.
  int64_t image_tokens_per_tile() const;
  // Vision width after pixel shuffle (mlp1's input): 1024 / 0.5² = 4096.
  int64_t shuffled_vision_size() const;
  // Throws naming the field when dimensions do not fit together.
  void validate() const;

  // "tiny", "sa2va-1b" (InternViT-300M + Qwen2.5-0.5B), "sa2va-4b" (InternViT-300M + Qwen2.5-3B).
  static Sa2VAConfig preset(const std::string& name);
  static std::vector<std::string> preset_names();
  // A checkpoint's config.json (a file, or a directory holding config.json).
  static Sa2VAConfig from_json_file(const std::string& path);
  static Sa2VAConfig from_json_text(const std::string& text, const std::string& origin);
  // config.json as Sa2VA's own config class writes it (model_type sa2va_chat, vision_config, llm_config, template,
  // ...; the keys of tests/fixtures/sa2va/config_tiny.json that describe the model), for merged weights stored in
  // WEIGHTS_DTYPE ("bfloat16" or "float32"): from_json_text reads it back to the same dimensions. Without LoRA
  // (use_llm_lora 0) and without token ids, as released: Sa2VA's code takes them from the tokenizer.
  std::string to_json(const std::string& weights_dtype) const;
};

}  // namespace vesseltune::model
