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
  VT_CHECK(lora.r > 0 && lora.alpha > 0 && lora.dropout >= 0 && lora.dropout < 1, "lora: r ", lora.r, ", alpha ",
           lora.alpha, ", dropout ", lora.dropout, " out of range");
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

}  // namespace vesseltune::model
