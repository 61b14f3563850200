// Sa2VA's chat templates: input_ids and labels of the vessel prompt against ids from HF `tokenizers`
// (cases 7 and 8 of tokenizer_reference.json are the qwen_chat instruction with 8 <IMG_CONTEXT> tokens and
// the answer "Sure, [SEG].<|im_end|>").
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "vesseltune/core/check.h"
#include "vesseltune/text/chat_template.h"
#include "vesseltune/text/tokenizer.h"

namespace vt = vesseltune::text;

namespace {

const vt::Tokenizer& qwen() {
  static vt::Tokenizer tokenizer = [] {
    vt::Tokenizer t = vt::Tokenizer::from_file(VESSELTUNE_QWEN_TOKENIZER);
    t.add_tokens(vt::sa2va_added_tokens(), true);
    return t;
  }();
  return tokenizer;
}

}  // namespace

TEST(ChatTemplate, QwenVesselPromptMatchesHfIdsWithAnswerOnlyLabels) {
  std::ifstream in(VESSELTUNE_FIXTURES_DIR "/tokenizer_reference.json");
  const auto cases = nlohmann::json::parse(in)["cases"];
  const auto instruction = cases[7]["ids"].get<std::vector<int64_t>>();
  const auto answer = cases[8]["ids"].get<std::vector<int64_t>>();
  ASSERT_EQ(cases[8]["text"].get<std::string>(), "Sure, [SEG].<|im_end|>");

  vt::EncodeOptions options;
  options.image_tokens_per_tile = 4;
  options.tiles = 2;
  const vt::VesselPrompts prompts;
  const auto encoded = vt::encode_conversation(qwen(), vt::chat_template("qwen_chat"), {prompts.default_turn()}, options);

  std::vector<int64_t> ids = instruction, labels(instruction.size(), vt::kIgnoreIndex);
  ids.insert(ids.end(), answer.begin(), answer.end());
  labels.insert(labels.end(), answer.begin(), answer.end());
  ids.push_back(198);  // the separator "\n"
  labels.push_back(vt::kIgnoreIndex);
  EXPECT_EQ(encoded.input_ids, ids);
  EXPECT_EQ(encoded.labels, labels);
}

TEST(ChatTemplate, ImagePlaceholderExpandsToContextTokensPerTile) {
  vt::EncodeOptions options;  // 256 per tile
  options.tiles = 3;
  const auto encoded = vt::encode_conversation(qwen(), vt::chat_template("qwen_chat"),
                                               {{"<image>\nWhat is this?", "Vessels [SEG]."}}, options);
  const int64_t context = qwen().token_id("<IMG_CONTEXT>");
  EXPECT_EQ(std::count(encoded.input_ids.begin(), encoded.input_ids.end(), context), 3 * 256);
  EXPECT_EQ(std::count(encoded.input_ids.begin(), encoded.input_ids.end(), qwen().token_id("<img>")), 1);
  EXPECT_EQ(std::count(encoded.labels.begin(), encoded.labels.end(), qwen().token_id("[SEG]")), 1);
}

TEST(ChatTemplate, SystemPromptAndOtherTemplates) {
  vt::EncodeOptions options;
  options.system = "You are a vessel segmenter.";
  options.image_tokens_per_tile = 1;
  const auto qwen_ids = vt::encode_conversation(qwen(), vt::chat_template("qwen_chat"), {{"hi", "ok"}}, options);
  const auto expected_prefix = qwen().encode("<|im_start|>system\nYou are a vessel segmenter.<|im_end|>\n<|im_start|>user\nhi");
  ASSERT_GE(qwen_ids.input_ids.size(), expected_prefix.size());
  EXPECT_TRUE(std::equal(expected_prefix.begin(), expected_prefix.end(), qwen_ids.input_ids.begin()));

  const auto phi3 = vt::chat_template("phi3_chat");
  EXPECT_EQ(phi3.instruction, "<|user|>\n{input}<|end|>\n<|assistant|>\n");
  EXPECT_EQ(phi3.suffix, "<|end|>");
  EXPECT_EQ(vt::chat_template("internlm2_chat").suffix, "<|im_end|>");
  EXPECT_THROW(vt::chat_template("llama3_chat"), vesseltune::Error);
}

TEST(ChatTemplate, TooLongConversationsAndBadPromptsAreRejected) {
  vt::EncodeOptions options;
  options.tiles = 12;
  options.max_length = 1000;
  try {
    vt::encode_conversation(qwen(), vt::chat_template("qwen_chat"), {vt::VesselPrompts().default_turn()}, options);
    FAIL() << "12 tiles exceed 1000 tokens";
  } catch (const vesseltune::Error& e) {
    EXPECT_NE(std::string(e.what()).find("max_length 1000"), std::string::npos) << e.what();
  }
  vt::VesselPrompts bad;
  bad.answers = {"Sure."};
  EXPECT_THROW(bad.validate(), vesseltune::Error);
  std::mt19937_64 rng(7);
  const vt::VesselPrompts prompts;
  for (int i = 0; i < 20; ++i) {
    const vt::Turn turn = prompts.sample(rng);
    EXPECT_NE(turn.input.find("<image>"), std::string::npos);
    EXPECT_NE(turn.output.find("[SEG]"), std::string::npos);
  }
}
