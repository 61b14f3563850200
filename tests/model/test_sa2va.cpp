// The vision-language half's keys and shapes equal a real Sa2VA checkpoint's (tests/fixtures/sa2va/, the
// shared checkpoint layout), presets and config.json reading, and the errors for bad input.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include <fstream>
#include <map>
#include <sstream>

#include "error_message.h"
#include "test_support.h"
#include "vesseltune/core/check.h"
#include "vesseltune/model/lora.h"
#include "vesseltune/model/projector.h"
#include "vesseltune/model/sa2va_vision_language.h"

namespace vm = vesseltune::model;
using vm::testing::fixture;

namespace {

std::string shape_text(at::IntArrayRef sizes) {
  std::string s = "[";
  for (size_t i = 0; i < sizes.size(); ++i) s += (i ? ", " : "") + std::to_string(sizes[i]);
  return s + "]";
}

}  // namespace

TEST(Sa2VA, ParameterKeysAndShapesEqualTheCheckpoint) {
  vm::Sa2VAConfig config = vm::Sa2VAConfig::from_json_file(fixture("sa2va/config_tiny.json"));
  config.image_context_token_id = 151671;
  config.seg_token_id = 151672;
  vm::Sa2VAVisionLanguage model(config);

  std::map<std::string, std::string> expected;  // key → shape, the vision-language half of the checkpoint
  std::ifstream in(fixture("sa2va/sa2va_keys.txt"));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string key, dtype, shape;
    std::getline(fields, key, '\t');
    std::getline(fields, dtype, '\t');
    std::getline(fields, shape, '\t');
    if (key.rfind("grounding_encoder.", 0) != 0) expected[key] = shape;
  }
  ASSERT_EQ(expected.size(), 69u);

  std::map<std::string, std::string> actual;
  for (const auto& p : model->named_parameters()) actual[p.key()] = shape_text(p.value().sizes());
  EXPECT_EQ(actual, expected);

  // Adapters add keys; the checkpoint's keys stay as they are.
  vm::apply_lora(*model, config.lora);
  size_t base = 0;
  for (const auto& p : model->named_parameters()) {
    if (p.key().find(".lora_") == std::string::npos) {
      ++base;
      EXPECT_EQ(expected.count(p.key()), 1u) << p.key();
    }
  }
  EXPECT_EQ(base, expected.size());
}

TEST(Sa2VA, PresetsHaveTheReleasedDimensions) {
  const auto b1 = vm::Sa2VAConfig::preset("sa2va-1b");
  EXPECT_EQ(b1.vision.hidden_size, 1024);
  EXPECT_EQ(b1.vision.num_layers, 24);
  EXPECT_EQ(b1.llm.hidden_size, 896);
  EXPECT_EQ(b1.llm.num_layers, 24);
  EXPECT_EQ(b1.llm.num_heads, 14);
  EXPECT_EQ(b1.llm.num_kv_heads, 2);
  EXPECT_EQ(b1.image_tokens_per_tile(), 256);
  EXPECT_EQ(b1.shuffled_vision_size(), 4096);
  EXPECT_EQ(b1.lora.r, 128);
  EXPECT_DOUBLE_EQ(b1.lora.alpha, 256);
  EXPECT_DOUBLE_EQ(b1.lora.dropout, 0.05);
  const auto b4 = vm::Sa2VAConfig::preset("sa2va-4b");
  EXPECT_EQ(b4.llm.hidden_size, 2048);
  EXPECT_EQ(b4.llm.num_layers, 36);
  EXPECT_EQ(b4.llm.intermediate_size, 11008);
  EXPECT_THROW(vm::Sa2VAConfig::preset("sa2va-26b"), vesseltune::Error);

  vm::Sa2VAConfig tiny = vm::Sa2VAConfig::preset("tiny");
  tiny.image_context_token_id = 2042;
  tiny.seg_token_id = 2043;
  vm::Sa2VAVisionLanguage model(tiny);
  int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();
  EXPECT_GT(params, 1'000'000);
  EXPECT_LT(params, 10'000'000);
}

TEST(Sa2VA, ConfigJsonErrorsNameTheField) {
  std::ifstream in(fixture("sa2va/config_tiny.json"));
  std::stringstream text;
  text << in.rdbuf();
  const std::string good = text.str();
  const vm::Sa2VAConfig parsed = vm::Sa2VAConfig::from_json_text(good, "config_tiny.json");
  EXPECT_EQ(parsed.llm.vocab_size, 151677);
  EXPECT_EQ(parsed.template_name, "qwen_chat");
  EXPECT_EQ(parsed.max_dynamic_patch, 12);
  EXPECT_DOUBLE_EQ(parsed.llm.rope_theta, 1e6);

  std::string other_llm = good;
  other_llm.replace(other_llm.find("\"model_type\": \"qwen2\""), 21, "\"model_type\": \"internlm2\"");
  EXPECT_NE(vesseltune::testing_support::error_message([&] { vm::Sa2VAConfig::from_json_text(other_llm, "x.json"); }).find("llm_config.model_type"),
            std::string::npos);
  EXPECT_NE(vesseltune::testing_support::error_message([&] { vm::Sa2VAConfig::from_json_text(good.substr(0, 500), "cut.json"); }).find("cut.json"),
            std::string::npos);
}

TEST(Sa2VA, BadInputsSayWhatAndWhere) {
  torch::NoGradGuard no_grad;
  vm::Sa2VAConfig config = vm::testing::small_config();
  config.max_length = 16;
  vm::Sa2VAVisionLanguage model(config);
  const auto batch = vm::testing::small_batch();
  vm::Sa2VAInputs in{batch.pixel_values, batch.input_ids, batch.attention_mask, batch.labels, {}};

  vm::Sa2VAInputs no_seg = in;
  no_seg.masks_per_sample = {1, 1};  // sample 1 has two [SEG]
  EXPECT_NE(vesseltune::testing_support::error_message([&] { model->forward(no_seg); }).find("sample 1 has 2 [SEG]"), std::string::npos);

  vm::Sa2VAInputs too_long = in;
  too_long.input_ids = at::cat({in.input_ids, in.input_ids}, 1);
  too_long.labels = at::Tensor();
  too_long.attention_mask = at::Tensor();
  too_long.pixel_values = at::cat({in.pixel_values, in.pixel_values});
  EXPECT_NE(vesseltune::testing_support::error_message([&] { model->forward(too_long); }).find("exceed max_length 16"), std::string::npos);

  vm::Sa2VAInputs missing_tile = in;
  missing_tile.pixel_values = in.pixel_values.slice(0, 0, 1);
  EXPECT_NE(vesseltune::testing_support::error_message([&] { model->forward(missing_tile); }).find("8 <IMG_CONTEXT> tokens"), std::string::npos);

  vm::Sa2VAInputs bad_id = in;
  bad_id.input_ids = in.input_ids.clone();
  bad_id.input_ids.index_put_({1, 3}, 999);
  bad_id.input_ids.index_put_({1, 2}, 1);  // keep the image token count: replace two of them
  EXPECT_NE(vesseltune::testing_support::error_message([&] { model->forward(bad_id); }).find("input_ids[1,3]"), std::string::npos);
}

TEST(Sa2VA, PixelShuffleMovesTwoByTwoBlocksIntoChannels) {
  // A 4×4 grid of 1-channel patches numbered row-major; v2 groups each 2×2 block into one token.
  at::Tensor grid = at::arange(16, at::kFloat).reshape({1, 16, 1});
  at::Tensor with_cls = at::cat({at::full({1, 1, 1}, -1.0), grid}, 1);
  at::Tensor out = vm::pixel_shuffle(with_cls, 0.5, "v2");
  ASSERT_EQ(out.sizes(), (at::IntArrayRef{1, 4, 4}));
  // InternVL's layout: token (i, j) holds patches (2i, 2j), (2i, 2j+1), (2i+1, 2j), (2i+1, 2j+1).
  EXPECT_TRUE(at::equal(out[0][0], at::tensor(std::vector<float>{0, 1, 4, 5})));
  EXPECT_TRUE(at::equal(out[0][1], at::tensor(std::vector<float>{2, 3, 6, 7})));
  EXPECT_TRUE(at::equal(out[0][2], at::tensor(std::vector<float>{8, 9, 12, 13})));
}

TEST(Sa2VA, TiedEmbeddingsHaveNoLmHeadAndUseTheEmbeddingMatrix) {
  vm::Sa2VAConfig config = vm::testing::small_config();
  config.llm.tie_word_embeddings = true;
  vm::Qwen2ForCausalLM llm(config.llm);
  for (const auto& p : llm->named_parameters()) EXPECT_EQ(p.key().rfind("lm_head", 0), std::string::npos) << p.key();
  const at::Tensor hidden = at::randn({2, 3, config.llm.hidden_size});
  const at::Tensor expected = at::matmul(hidden, llm->model->embed_tokens->weight.t());
  EXPECT_TRUE(vm::testing::close(llm->logits(hidden), expected, 1e-6));
}
