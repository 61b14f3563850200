#pragma once
// Sa2VA's chat templates (xtuner's PROMPT_TEMPLATE entries qwen_chat, phi3_chat, internlm2_chat) and the
// encoding of a conversation into input_ids and labels the way xtuner's template_map_fn + encode_fn do it:
//   per turn: [system (first turn, when given)] + instruction(input)  → labels -100
//             output + suffix                                          → labels = ids (the answer is learned)
//             separator                                                → labels -100
// `<image>` in an input becomes <img> + <IMG_CONTEXT> × (256 · tiles) + </img> before tokenisation.

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "vesseltune/text/tokenizer.h"

namespace vesseltune::text {

inline constexpr int64_t kIgnoreIndex = -100;

// Sa2VA's extra tokens (added to the Qwen vocabulary in this order by Sa2VA) and InternVL's image tokens.
inline constexpr const char* kSegToken = "[SEG]";
inline constexpr const char* kImageStartToken = "<img>";
inline constexpr const char* kImageEndToken = "</img>";
inline constexpr const char* kImageContextToken = "<IMG_CONTEXT>";
inline constexpr const char* kImagePlaceholder = "<image>";
// The tokens a Sa2VA checkpoint's tokenizer has beyond the base Qwen vocabulary.
std::vector<std::string> sa2va_added_tokens();

struct ChatTemplate {
  std::string name;
  std::string system;       // contains {system}
  std::string instruction;  // contains {input}
  std::string suffix;       // appended to each answer (and learned)
  std::string separator;    // after each turn (not learned)
  std::vector<std::string> stop_words;
};

// "qwen_chat", "phi3_chat" or "internlm2_chat"; throws naming the known ones otherwise.
ChatTemplate chat_template(const std::string& name);

struct Turn {
  std::string input;   // may contain <image>
  std::string output;  // the answer, e.g. "Sure, [SEG]."
};

struct EncodedConversation {
  std::vector<int64_t> input_ids;
  std::vector<int64_t> labels;  // kIgnoreIndex where no loss is taken
};

struct EncodeOptions {
  std::string system;             // empty: no system block
  int64_t image_tokens_per_tile = 256;
  int64_t tiles = 1;              // tiles of the image that replaces <image>
  int64_t max_length = 0;         // > 0: longer results throw, naming the length
};

EncodedConversation encode_conversation(const Tokenizer& tokenizer, const ChatTemplate& chat,
                                        const std::vector<Turn>& turns, const EncodeOptions& options);

// A generation prompt, as Sa2VA's predict_forward builds it: one turn's instruction around INPUT (after the system
// block when options.system is set), <image> expanded, and nothing after the assistant's header. Throws past
// options.max_length, naming the length.
std::vector<int64_t> encode_prompt(const Tokenizer& tokenizer, const ChatTemplate& chat, const std::string& input,
                                   const EncodeOptions& options);

// Replaces every <image> with <img><IMG_CONTEXT>×n</img>.
std::string expand_image_placeholder(const std::string& text, int64_t context_tokens);

// The vessel segmentation prompt: questions and answers sampled per training sample (the first of each is
// the default used for evaluation). Every answer must contain [SEG].
struct VesselPrompts {
  std::vector<std::string> questions = {
      "<image>\nPlease segment the blood vessels in this image.",
      "<image>\nCan you segment the blood vessels in this image?",
      "<image>\nPlease segment the vessels in this image.",
      "<image>\nWhat are the blood vessels in this image? Please respond with a segmentation mask.",
      "<image>\nSegment the vascular structures in this image.",
  };
  std::vector<std::string> answers = {
      "Sure, [SEG].",
      "It is [SEG].",
      "Sure, it is [SEG].",
      "The blood vessels are [SEG].",
  };

  Turn default_turn() const;
  Turn sample(std::mt19937_64& rng) const;
  void validate() const;  // throws when a list is empty, a question lacks <image> or an answer lacks [SEG]
};

}  // namespace vesseltune::text
