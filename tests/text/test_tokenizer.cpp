// The byte-level BPE tokenizer against HF `tokenizers` on the real Qwen tokenizer.json: ids of >= 1,000
// varied strings (tests/fixtures/tokenizer_reference.json, made by make_tokenizer_fixture.py), decoding, and
// the errors a broken tokenizer.json or a bad id give.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "vesseltune/core/check.h"
#include "vesseltune/text/chat_template.h"
#include "vesseltune/text/tokenizer.h"

namespace vt = vesseltune::text;

namespace {

nlohmann::json reference() {
  std::ifstream in(VESSELTUNE_FIXTURES_DIR "/tokenizer_reference.json");
  return nlohmann::json::parse(in);
}

const vt::Tokenizer& qwen() {
  static vt::Tokenizer tokenizer = [] {
    vt::Tokenizer t = vt::Tokenizer::from_file(VESSELTUNE_QWEN_TOKENIZER);
    t.add_tokens(vt::sa2va_added_tokens(), /*special=*/true);
    return t;
  }();
  return tokenizer;
}

std::string ids_text(const std::vector<int64_t>& ids) {
  std::string s;
  for (int64_t id : ids) s += std::to_string(id) + " ";
  return s;
}

}  // namespace

TEST(Tokenizer, AddedTokenIdsMatchHf) {
  const nlohmann::json ref = reference();
  for (const auto& [token, id] : ref["added"].items()) EXPECT_EQ(qwen().token_id(token), id.get<int64_t>()) << token;
  EXPECT_EQ(qwen().vocab_size(), 151677);  // the Sa2VA fixture checkpoint's embedding rows
}

TEST(Tokenizer, EncodeMatchesHfOnReferenceStrings) {
  const nlohmann::json ref = reference();
  const auto& cases = ref["cases"];
  ASSERT_GE(cases.size(), 1000u);
  int mismatches = 0;
  for (const auto& c : cases) {
    const std::string text = c["text"].get<std::string>();
    const auto expected = c["ids"].get<std::vector<int64_t>>();
    const auto ids = qwen().encode(text);
    if (ids != expected && ++mismatches <= 10) {
      ADD_FAILURE() << "text " << nlohmann::json(text).dump() << "\n  ours " << ids_text(ids) << "\n  HF   "
                    << ids_text(expected);
    }
  }
  EXPECT_EQ(mismatches, 0) << "of " << cases.size() << " strings";
}

TEST(Tokenizer, DecodeMatchesHfAndRoundTrips) {
  const nlohmann::json ref = reference();
  int round_trips = 0;
  for (const auto& c : ref["cases"]) {
    const std::string text = c["text"].get<std::string>();
    const std::string decoded = c["decoded"].get<std::string>();
    const auto ids = c["ids"].get<std::vector<int64_t>>();
    EXPECT_EQ(qwen().decode(ids), decoded) << nlohmann::json(text).dump();
    if (decoded == text) {  // text already in NFC (the normalizer changes the others, as in HF)
      EXPECT_EQ(qwen().decode(qwen().encode(text)), text);
      ++round_trips;
    }
  }
  EXPECT_GE(round_trips, 800);
}

TEST(Tokenizer, SkipSpecialLeavesOutSpecialTokens) {
  const auto ids = qwen().encode("<|im_start|>user\nHi [SEG]<|im_end|>");
  EXPECT_EQ(qwen().decode(ids, /*skip_special=*/true), "user\nHi ");
}

TEST(Tokenizer, TinyPresetTokenizerHasTheSa2VATokensAndRoundTrips) {
  vt::Tokenizer tiny = vt::Tokenizer::from_file(VESSELTUNE_CONFIGS_DIR "/tiny/tokenizer.json");
  for (const std::string& token : vt::sa2va_added_tokens()) EXPECT_TRUE(tiny.has_token(token)) << token;
  EXPECT_LE(tiny.vocab_size(), 2048);  // the tiny preset's embedding rows
  const std::string text = "<|im_start|>user\n<img><IMG_CONTEXT></img>\nPlease segment the blood vessels 血管 in "
                           "this image.<|im_end|>\nSure, [SEG].";
  EXPECT_EQ(tiny.decode(tiny.encode(text)), text);
}

TEST(Tokenizer, BrokenFilesAndIdsAreReported) {
  EXPECT_THROW(vt::Tokenizer::from_file("/nonexistent/tokenizer.json"), vesseltune::Error);
  EXPECT_THROW(vt::Tokenizer::from_json_text("{not json", "inline"), vesseltune::Error);
  EXPECT_THROW(vt::Tokenizer::from_json_text(R"({"model": {"type": "Unigram", "vocab": []}})", "inline"),
               vesseltune::Error);
  try {
    vt::Tokenizer::from_json_text(
        R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": []},
            "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated"}})",
        "broken.json");
    FAIL() << "a bad regex must throw";
  } catch (const vesseltune::Error& e) {
    EXPECT_NE(std::string(e.what()).find("regex"), std::string::npos) << e.what();
  }
  EXPECT_THROW(qwen().decode({-1}), vesseltune::Error);
  EXPECT_THROW(qwen().decode({qwen().vocab_size()}), vesseltune::Error);
  EXPECT_THROW(qwen().token_id("<not a token>"), vesseltune::Error);
}
