#include "vesseltune/text/chat_template.h"

#include "vesseltune/core/check.h"

namespace vesseltune::text {
namespace {

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (size_t pos = text.find(from); pos != std::string::npos; pos = text.find(from, pos + to.size())) {
    text.replace(pos, from.size(), to);
  }
  return text;
}

void append(EncodedConversation& out, const std::vector<int64_t>& ids, bool learned) {
  out.input_ids.insert(out.input_ids.end(), ids.begin(), ids.end());
  if (learned) {
    out.labels.insert(out.labels.end(), ids.begin(), ids.end());
  } else {
    out.labels.insert(out.labels.end(), ids.size(), kIgnoreIndex);
  }
}

}  // namespace

std::vector<std::string> sa2va_added_tokens() {
  return {kImageStartToken, kImageEndToken, kImageContextToken, kSegToken, "<p>", "</p>", "<vp>", "</vp>"};
}

ChatTemplate chat_template(const std::string& name) {
  // Templates with SUFFIX_AS_EOS: the suffix ends the answer, no extra EOS token is appended.
  if (name == "qwen_chat") {
    return {name, "<|im_start|>system\n{system}<|im_end|>\n", "<|im_start|>user\n{input}<|im_end|>\n<|im_start|>assistant\n",
            "<|im_end|>", "\n", {"<|im_end|>", "<|endoftext|>"}};
  }
  if (name == "internlm2_chat") {
    return {name, "<|im_start|>system\n{system}<|im_end|>\n", "<|im_start|>user\n{input}<|im_end|>\n<|im_start|>assistant\n",
            "<|im_end|>", "\n", {"<|im_end|>"}};
  }
  if (name == "phi3_chat") {
    return {name, "<|system|>\n{system}<|end|>\n", "<|user|>\n{input}<|end|>\n<|assistant|>\n", "<|end|>", "\n",
            {"<|end|>"}};
  }
  VT_FAIL("unknown chat template '", name, "' (known: qwen_chat, phi3_chat, internlm2_chat)");
}

std::string expand_image_placeholder(const std::string& text, int64_t context_tokens) {
  std::string image;
  image.reserve(static_cast<size_t>(context_tokens) * 13 + 16);
  image += kImageStartToken;
  for (int64_t i = 0; i < context_tokens; ++i) image += kImageContextToken;
  image += kImageEndToken;
  return replace_all(text, kImagePlaceholder, image);
}

namespace {

std::string instruction(const ChatTemplate& chat, const std::string& input, bool first_turn,
                        const EncodeOptions& options) {
  std::string text = replace_all(chat.instruction, "{input}", input);
  if (first_turn && !options.system.empty()) text = replace_all(chat.system, "{system}", options.system) + text;
  return expand_image_placeholder(text, options.image_tokens_per_tile * options.tiles);
}

void check_encode_options(const EncodeOptions& options) {
  VT_CHECK(options.tiles >= 1 && options.image_tokens_per_tile >= 1, "chat template: tiles (", options.tiles,
           ") and image tokens per tile (", options.image_tokens_per_tile, ") must be positive");
}

void check_length(size_t length, const EncodeOptions& options) {
  VT_CHECK(options.max_length <= 0 || static_cast<int64_t>(length) <= options.max_length, "the prompt is ", length,
           " tokens long (", options.tiles, " image tiles), over max_length ", options.max_length);
}

}  // namespace

std::vector<int64_t> encode_prompt(const Tokenizer& tokenizer, const ChatTemplate& chat, const std::string& input,
                                   const EncodeOptions& options) {
  check_encode_options(options);
  std::vector<int64_t> ids = tokenizer.encode(instruction(chat, input, true, options));
  check_length(ids.size(), options);
  return ids;
}

EncodedConversation encode_conversation(const Tokenizer& tokenizer, const ChatTemplate& chat,
                                        const std::vector<Turn>& turns, const EncodeOptions& options) {
  VT_CHECK(!turns.empty(), "encode_conversation: no turns");
  check_encode_options(options);
  EncodedConversation out;
  for (size_t i = 0; i < turns.size(); ++i) {
    append(out, tokenizer.encode(instruction(chat, turns[i].input, i == 0, options)), false);
    append(out, tokenizer.encode(turns[i].output + chat.suffix), true);
    if (!chat.separator.empty()) append(out, tokenizer.encode(chat.separator), false);
  }
  check_length(out.input_ids.size(), options);
  return out;
}

Turn VesselPrompts::default_turn() const {
  validate();
  return {questions.front(), answers.front()};
}

Turn VesselPrompts::sample(std::mt19937_64& rng) const {
  validate();
  std::uniform_int_distribution<size_t> pick_question(0, questions.size() - 1), pick_answer(0, answers.size() - 1);
  Turn turn;
  turn.input = questions[pick_question(rng)];
  turn.output = answers[pick_answer(rng)];
  return turn;
}

void VesselPrompts::validate() const {
  VT_CHECK(!questions.empty() && !answers.empty(), "vessel prompts: need at least one question and one answer");
  for (const std::string& q : questions) {
    VT_CHECK(q.find(kImagePlaceholder) != std::string::npos, "vessel prompt question without <image>: '", q, "'");
  }
  for (const std::string& a : answers) {
    VT_CHECK(a.find(kSegToken) != std::string::npos, "vessel prompt answer without [SEG]: '", a, "'");
  }
}

}  // namespace vesseltune::text
