#include "vesseltune/model/config.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "vesseltune/core/check.h"

namespace vesseltune::model {
namespace {

using nlohmann::json;

// A number that HF configs write either as a scalar or as a [h, w] pair (square only here).
int64_t square_size(const json& value, const std::string& where) {
  if (value.is_array()) {
    VT_CHECK(value.size() == 2 && value[0] == value[1], where, " must be square, got ", value.dump());
    return value[0].get<int64_t>();
  }
  return value.get<int64_t>();
}

VisionConfig read_vision(const json& v, const std::string& origin) {
  const std::string where = origin + ": vision_config";
  VisionConfig c;
  c.hidden_size = v.at("hidden_size").get<int64_t>();
  c.intermediate_size = v.at("intermediate_size").get<int64_t>();
  c.num_layers = v.at("num_hidden_layers").get<int64_t>();
  c.num_heads = v.at("num_attention_heads").get<int64_t>();
  c.num_channels = v.value("num_channels", int64_t{3});
  c.patch_size = square_size(v.at("patch_size"), where + ".patch_size");
  c.image_size = square_size(v.at("image_size"), where + ".image_size");
  c.norm_eps = v.value("layer_norm_eps", 1e-6);
  const std::string norm = v.value("norm_type", "layer_norm");
  VT_CHECK(norm == "layer_norm" || norm == "rms_norm", where, ".norm_type must be layer_norm or rms_norm, got ", norm);
  c.rms_norm = norm == "rms_norm";
  c.qkv_bias = v.value("qkv_bias", true);
  c.qk_norm = v.value("qk_normalization", false);
  const std::string act = v.value("hidden_act", "gelu");
  VT_CHECK(act == "gelu", where, ".hidden_act must be gelu, got ", act);
  return c;
}

LlmConfig read_llm(const json& l, const std::string& origin) {
  const std::string where = origin + ": llm_config";
  const std::string type = l.value("model_type", "qwen2");
  VT_CHECK(type == "qwen2", where, ".model_type must be qwen2 (other LLMs are not implemented), got ", type);
  LlmConfig c;
  c.vocab_size = l.at("vocab_size").get<int64_t>();
  c.hidden_size = l.at("hidden_size").get<int64_t>();
  c.intermediate_size = l.at("intermediate_size").get<int64_t>();
  c.num_layers = l.at("num_hidden_layers").get<int64_t>();
  c.num_heads = l.at("num_attention_heads").get<int64_t>();
  c.num_kv_heads = l.value("num_key_value_heads", c.num_heads);
  c.max_position_embeddings = l.value("max_position_embeddings", c.max_position_embeddings);
  c.rms_norm_eps = l.value("rms_norm_eps", 1e-6);
  c.tie_word_embeddings = l.value("tie_word_embeddings", false);
  // transformers 5 writes rope_parameters {rope_theta, rope_type}; 4.x wrote rope_theta and rope_scaling.
  const json& rope = l.contains("rope_parameters") && !l["rope_parameters"].is_null() ? l["rope_parameters"] : l;
  c.rope_theta = rope.value("rope_theta", c.rope_theta);
  const std::string rope_type = rope.value("rope_type", "default");
  VT_CHECK(rope_type == "default", where, ": only default RoPE is implemented, got rope_type ", rope_type);
  VT_CHECK(!l.contains("rope_scaling") || l["rope_scaling"].is_null(), where,
           ": rope_scaling is not implemented, got ", l["rope_scaling"].dump());
  VT_CHECK(!l.value("use_sliding_window", false), where, ": sliding-window attention is not implemented");
  const std::string act = l.value("hidden_act", "silu");
  VT_CHECK(act == "silu", where, ".hidden_act must be silu, got ", act);
  return c;
}

}  // namespace

int64_t Sa2VAConfig::image_tokens_per_tile() const {
  const double side = static_cast<double>(vision.patches_per_side()) * downsample_ratio;
  return static_cast<int64_t>(std::llround(side * side));
}

int64_t Sa2VAConfig::shuffled_vision_size() const {
  return static_cast<int64_t>(std::llround(static_cast<double>(vision.hidden_size) / (downsample_ratio * downsample_ratio)));
}

void Sa2VAConfig::validate() const {
  VT_CHECK(vision.hidden_size % vision.num_heads == 0, "vision_config: hidden_size ", vision.hidden_size,
           " is not a multiple of num_attention_heads ", vision.num_heads);
  VT_CHECK(vision.image_size % vision.patch_size == 0, "vision_config: image_size ", vision.image_size,
           " is not a multiple of patch_size ", vision.patch_size);
  VT_CHECK(downsample_ratio == 0.5, "downsample_ratio must be 0.5 (pixel shuffle by 2), got ", downsample_ratio);
  VT_CHECK(vision.patches_per_side() % 2 == 0, "vision_config: ", vision.patches_per_side(),
           " patches per side cannot be pixel-shuffled by 2");
  VT_CHECK(ps_version == "v1" || ps_version == "v2", "ps_version must be v1 or v2, got ", ps_version);
  VT_CHECK(select_layer == -1, "select_layer ", select_layer, " is not supported (only -1, the last layer)");
  VT_CHECK(llm.hidden_size % llm.num_heads == 0, "llm_config: hidden_size ", llm.hidden_size,
           " is not a multiple of num_attention_heads ", llm.num_heads);
  VT_CHECK(llm.num_heads % llm.num_kv_heads == 0, "llm_config: num_attention_heads ", llm.num_heads,
           " is not a multiple of num_key_value_heads ", llm.num_kv_heads);
  VT_CHECK(llm.head_dim() % 2 == 0, "llm_config: head_dim ", llm.head_dim(), " must be even for RoPE");
  VT_CHECK(!use_llm_lora || (lora.r > 0 && lora.alpha > 0 && lora.dropout >= 0 && lora.dropout < 1), "lora: r ",
           lora.r, ", alpha ", lora.alpha, ", dropout ", lora.dropout, " out of range");
  VT_CHECK(max_length > 0, "max_length must be positive, got ", max_length);
}

std::vector<std::string> Sa2VAConfig::preset_names() { return {"tiny", "sa2va-1b", "sa2va-4b"}; }

Sa2VAConfig Sa2VAConfig::preset(const std::string& name) {
  Sa2VAConfig c;  // defaults: InternViT-300M + Qwen2.5-0.5B
  if (name == "sa2va-1b") {
    // The defaults.
  } else if (name == "sa2va-4b") {
    c.llm.hidden_size = 2048;
    c.llm.intermediate_size = 11008;
    c.llm.num_layers = 36;
    c.llm.num_heads = 16;
    c.llm.num_kv_heads = 2;
  } else if (name == "tiny") {
    // A few million parameters: CPU tests and the demo. Full-size 448 tiles (256 image tokens each) and
    // configs/tiny/tokenizer.json's vocabulary.
    c.vision.hidden_size = 64;
    c.vision.intermediate_size = 128;
    c.vision.num_layers = 2;
    c.vision.num_heads = 4;
    c.llm.vocab_size = 2048;
    c.llm.hidden_size = 256;
    c.llm.intermediate_size = 512;
    c.llm.num_layers = 2;
    c.llm.num_heads = 4;
    c.llm.num_kv_heads = 2;
    c.llm.max_position_embeddings = 8192;
    c.lora.r = 8;
    c.lora.alpha = 16;
  } else {
    VT_FAIL("unknown model preset '", name, "' (known: tiny, sa2va-1b, sa2va-4b)");
  }
  c.validate();
  return c;
}

Sa2VAConfig Sa2VAConfig::from_json_file(const std::string& path) {
  std::string file = std::filesystem::is_directory(path) ? (std::filesystem::path(path) / "config.json").string() : path;
  std::ifstream in(file);
  VT_CHECK(in.good(), "cannot open model config ", file);
  std::stringstream text;
  text << in.rdbuf();
  return from_json_text(text.str(), file);
}

Sa2VAConfig Sa2VAConfig::from_json_text(const std::string& text, const std::string& origin) {
  Sa2VAConfig c;
  try {
    const json root = json::parse(text);
    const std::string type = root.value("model_type", "sa2va_chat");
    VT_CHECK(type == "sa2va_chat" || type == "internvl_chat", origin, ": model_type must be sa2va_chat, got ", type);
    c.vision = read_vision(root.at("vision_config"), origin);
    c.llm = read_llm(root.at("llm_config"), origin);
    if (root.contains("force_image_size") && !root["force_image_size"].is_null()) {
      c.vision.image_size = square_size(root["force_image_size"], origin + ": force_image_size");
    }
    c.downsample_ratio = root.value("downsample_ratio", c.downsample_ratio);
    c.ps_version = root.value("ps_version", c.ps_version);
    c.select_layer = root.value("select_layer", c.select_layer);
    c.template_name = root.value("template", c.template_name);
    c.min_dynamic_patch = root.value("min_dynamic_patch", c.min_dynamic_patch);
    c.max_dynamic_patch = root.value("max_dynamic_patch", c.max_dynamic_patch);
    c.use_thumbnail = root.value("use_thumbnail", c.use_thumbnail);
    c.image_context_token_id = root.value("image_context_token_id", c.image_context_token_id);
    c.seg_token_id = root.value("seg_token_id", c.seg_token_id);
  } catch (const json::exception& e) {
    VT_FAIL(origin, ": malformed model config: ", e.what());
  }
  try {
    c.validate();
  } catch (const Error& e) {
    VT_FAIL(origin, ": ", e.what());
  }
  return c;
}

namespace {

using ordered = nlohmann::ordered_json;

// The vision_config of Sa2VA's config.json, in the order its config class writes it.
ordered vision_config_json(const VisionConfig& vision, const std::string& weights_dtype) {
  return {
      {"architectures", nullptr},
      {"dtype", weights_dtype},
      {"hidden_size", vision.hidden_size},
      {"intermediate_size", vision.intermediate_size},
      {"dropout", 0.0},
      {"drop_path_rate", 0.0},
      {"num_hidden_layers", vision.num_layers},
      {"num_attention_heads", vision.num_heads},
      {"num_channels", vision.num_channels},
      {"patch_size", vision.patch_size},
      {"image_size", vision.image_size},
      {"initializer_range", 0.02},
      {"initializer_factor", 1.0},
      {"attention_dropout", 0.0},
      {"layer_norm_eps", vision.norm_eps},
      {"hidden_act", "gelu"},
      {"norm_type", vision.rms_norm ? "rms_norm" : "layer_norm"},
      {"qkv_bias", vision.qkv_bias},
      {"qk_normalization", vision.qk_norm},
      {"use_flash_attn", false},
      {"model_type", "intern_vit_6b"},
  };
}

// The llm_config (Qwen2's), in the order transformers writes it.
ordered llm_config_json(const LlmConfig& llm, const std::string& weights_dtype) {
  return {
      {"architectures", {"Qwen2ForCausalLM"}},
      {"dtype", weights_dtype},
      {"vocab_size", llm.vocab_size},
      {"hidden_size", llm.hidden_size},
      {"intermediate_size", llm.intermediate_size},
      {"num_hidden_layers", llm.num_layers},
      {"num_attention_heads", llm.num_heads},
      {"num_key_value_heads", llm.num_kv_heads},
      {"hidden_act", "silu"},
      {"max_position_embeddings", llm.max_position_embeddings},
      {"initializer_range", 0.02},
      {"rms_norm_eps", llm.rms_norm_eps},
      {"use_cache", true},
      {"tie_word_embeddings", llm.tie_word_embeddings},
      // transformers 5 reads rope_parameters; 4.x, which Sa2VA's released code was written for, rope_theta.
      {"rope_theta", llm.rope_theta},
      {"rope_parameters", {{"rope_theta", llm.rope_theta}, {"rope_type", "default"}}},
      {"use_sliding_window", false},
      {"sliding_window", nullptr},
      {"layer_types", std::vector<std::string>(static_cast<size_t>(llm.num_layers), "full_attention")},
      {"attention_dropout", 0.0},
      {"model_type", "qwen2"},
  };
}

}  // namespace

std::string Sa2VAConfig::to_json(const std::string& weights_dtype) const {
  VT_CHECK(weights_dtype == "bfloat16" || weights_dtype == "float32", "config.json: weights dtype must be bfloat16 or ",
           "float32, got ", weights_dtype);
  // Ordered as Sa2VA's config class writes them; values it writes that do not depend on the model are its own.
  const ordered vision_json = vision_config_json(vision, weights_dtype);
  const ordered llm_json = llm_config_json(llm, weights_dtype);
  const ordered root = {
      {"architectures", {"Sa2VAChatModel"}},
      // The classes of Sa2VA's remote code (configuration_sa2va_chat.py, modeling_sa2va_chat.py, ... from the base
      // model's repository), which AutoModel.from_pretrained(..., trust_remote_code=True) loads.
      {"auto_map",
       {{"AutoConfig", "configuration_sa2va_chat.Sa2VAChatConfig"},
        {"AutoModel", "modeling_sa2va_chat.Sa2VAChatModel"},
        {"AutoModelForCausalLM", "modeling_sa2va_chat.Sa2VAChatModel"}}},
      {"dtype", weights_dtype},
      {"torch_dtype", weights_dtype},  // transformers 4.x's name
      {"vision_config", vision_json},
      {"llm_config", llm_json},
      {"use_backbone_lora", 0},
      {"use_llm_lora", 0},
      {"pad2square", false},
      {"select_layer", select_layer},
      {"force_image_size", vision.image_size},
      {"downsample_ratio", downsample_ratio},
      {"template", template_name},
      {"dynamic_image_size", true},
      {"use_thumbnail", use_thumbnail},
      {"ps_version", ps_version},
      {"min_dynamic_patch", min_dynamic_patch},
      {"max_dynamic_patch", max_dynamic_patch},
      {"hidden_size", llm.hidden_size},
      {"tie_word_embeddings", llm.tie_word_embeddings},
      {"model_type", "sa2va_chat"},
  };
  return root.dump(1) + "\n";
}

}  // namespace vesseltune::model
