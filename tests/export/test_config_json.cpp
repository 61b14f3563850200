// Sa2VAConfig::to_json: the official config.json (tests/fixtures/sa2va/config_tiny.json, written by Sa2VA's own
// config class) read and written again keeps every key that describes the model with the official value, and what
// to_json writes reads back to the same dimensions for every preset.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "error_message.h"
#include "vesseltune/model/config.h"

namespace vesseltune::model {
namespace {

using nlohmann::json;

std::string official_text() {
  std::ifstream in(std::string(VESSELTUNE_FIXTURES_DIR) + "/sa2va/config_tiny.json");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

void expect_same_dimensions(const Sa2VAConfig& a, const Sa2VAConfig& b) {
  EXPECT_EQ(a.vision.hidden_size, b.vision.hidden_size);
  EXPECT_EQ(a.vision.intermediate_size, b.vision.intermediate_size);
  EXPECT_EQ(a.vision.num_layers, b.vision.num_layers);
  EXPECT_EQ(a.vision.num_heads, b.vision.num_heads);
  EXPECT_EQ(a.vision.num_channels, b.vision.num_channels);
  EXPECT_EQ(a.vision.patch_size, b.vision.patch_size);
  EXPECT_EQ(a.vision.image_size, b.vision.image_size);
  EXPECT_EQ(a.vision.norm_eps, b.vision.norm_eps);
  EXPECT_EQ(a.vision.rms_norm, b.vision.rms_norm);
  EXPECT_EQ(a.vision.qkv_bias, b.vision.qkv_bias);
  EXPECT_EQ(a.vision.qk_norm, b.vision.qk_norm);
  EXPECT_EQ(a.llm.vocab_size, b.llm.vocab_size);
  EXPECT_EQ(a.llm.hidden_size, b.llm.hidden_size);
  EXPECT_EQ(a.llm.intermediate_size, b.llm.intermediate_size);
  EXPECT_EQ(a.llm.num_layers, b.llm.num_layers);
  EXPECT_EQ(a.llm.num_heads, b.llm.num_heads);
  EXPECT_EQ(a.llm.num_kv_heads, b.llm.num_kv_heads);
  EXPECT_EQ(a.llm.max_position_embeddings, b.llm.max_position_embeddings);
  EXPECT_EQ(a.llm.rms_norm_eps, b.llm.rms_norm_eps);
  EXPECT_EQ(a.llm.rope_theta, b.llm.rope_theta);
  EXPECT_EQ(a.llm.tie_word_embeddings, b.llm.tie_word_embeddings);
  EXPECT_EQ(a.downsample_ratio, b.downsample_ratio);
  EXPECT_EQ(a.ps_version, b.ps_version);
  EXPECT_EQ(a.select_layer, b.select_layer);
  EXPECT_EQ(a.template_name, b.template_name);
  EXPECT_EQ(a.min_dynamic_patch, b.min_dynamic_patch);
  EXPECT_EQ(a.max_dynamic_patch, b.max_dynamic_patch);
  EXPECT_EQ(a.use_thumbnail, b.use_thumbnail);
}

TEST(ConfigJson, KeepsTheOfficialKeysAndValues) {
  const json official = json::parse(official_text());
  const json written = json::parse(Sa2VAConfig::from_json_text(official_text(), "config_tiny.json").to_json("float32"));
  // Everything the official config says about the model (its dtype entries and transformers' bookkeeping aside).
  for (const char* key : {"architectures", "model_type", "use_backbone_lora", "use_llm_lora", "pad2square",
                          "select_layer", "force_image_size", "downsample_ratio", "template", "dynamic_image_size",
                          "use_thumbnail", "ps_version", "min_dynamic_patch", "max_dynamic_patch", "hidden_size",
                          "tie_word_embeddings"}) {
    ASSERT_TRUE(written.contains(key)) << key;
    EXPECT_EQ(written[key], official[key]) << key;
  }
  for (const char* key : {"architectures", "model_type", "hidden_size", "intermediate_size", "dropout",
                          "drop_path_rate", "num_hidden_layers", "num_attention_heads", "num_channels", "patch_size",
                          "image_size", "initializer_range", "initializer_factor", "attention_dropout",
                          "layer_norm_eps", "hidden_act", "norm_type", "qkv_bias", "qk_normalization",
                          "use_flash_attn"}) {
    ASSERT_TRUE(written["vision_config"].contains(key)) << "vision_config." << key;
    EXPECT_EQ(written["vision_config"][key], official["vision_config"][key]) << "vision_config." << key;
  }
  for (const char* key : {"architectures", "model_type", "vocab_size", "hidden_size", "intermediate_size",
                          "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "hidden_act",
                          "max_position_embeddings", "initializer_range", "rms_norm_eps", "use_cache",
                          "tie_word_embeddings", "rope_parameters", "use_sliding_window", "sliding_window",
                          "layer_types", "attention_dropout", "dtype"}) {
    ASSERT_TRUE(written["llm_config"].contains(key)) << "llm_config." << key;
    EXPECT_EQ(written["llm_config"][key], official["llm_config"][key]) << "llm_config." << key;
  }
  // transformers 4.x (Sa2VA's released code) reads these.
  EXPECT_EQ(written["llm_config"]["rope_theta"], 1000000.0);
  EXPECT_EQ(written["torch_dtype"], "float32");
  EXPECT_EQ(written["auto_map"]["AutoModel"], "modeling_sa2va_chat.Sa2VAChatModel");
}

TEST(ConfigJson, ReadsBackToTheSameDimensions) {
  for (const std::string& name : Sa2VAConfig::preset_names()) {
    SCOPED_TRACE(name);
    Sa2VAConfig config = Sa2VAConfig::preset(name);
    config.max_dynamic_patch = 6;  // a training setting that config.json carries
    config.use_thumbnail = false;
    const std::string text = config.to_json("bfloat16");
    expect_same_dimensions(Sa2VAConfig::from_json_text(text, name), config);
    EXPECT_EQ(json::parse(text)["dtype"], "bfloat16");
  }
  Sa2VAConfig rms = Sa2VAConfig::from_json_text(official_text(), "config_tiny.json");
  rms.vision.rms_norm = true;  // InternViT-6B's options
  rms.vision.qk_norm = true;
  rms.vision.qkv_bias = false;
  rms.llm.tie_word_embeddings = true;
  rms.llm.rope_theta = 10000;
  expect_same_dimensions(Sa2VAConfig::from_json_text(rms.to_json("float32"), "rms"), rms);
}

TEST(ConfigJson, RefusesADtypeItCannotName) {
  const std::string message =
      testing_support::error_message([] { Sa2VAConfig::preset("tiny").to_json("float16"); });
  EXPECT_NE(message.find("weights dtype must be bfloat16 or float32, got float16"), std::string::npos) << message;
}

}  // namespace
}  // namespace vesseltune::model
