#pragma once
// Byte-level BPE tokenizer read from a Hugging Face tokenizer.json (Qwen2 / Qwen2.5 / Qwen3 and other
// GPT-2-style tokenizers). Encoding follows HF `tokenizers` step by step:
//   text → split on added tokens (leftmost-longest, matched on the raw text)
//        → each remaining segment: normalizer (NFC or none) → pre-tokenisation regex (Split, Isolated)
//        → bytes mapped to GPT-2's printable code points → BPE merges by rank → vocabulary ids.
// Decoding maps ids back to tokens, concatenates them and turns the byte-level code points back into bytes.

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace vesseltune::text {

struct AddedToken {
  int64_t id = -1;
  std::string content;
  bool special = false;
};

class Tokenizer {
 public:
  // Reads and validates tokenizer.json; throws vesseltune::Error naming the file and the field.
  static Tokenizer from_file(const std::string& path);
  static Tokenizer from_json_text(const std::string& json_text, const std::string& origin);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  std::vector<int64_t> encode(const std::string& text) const;
  // skip_special: leave out added tokens marked special (like HF decode(skip_special_tokens=True)).
  std::string decode(const std::vector<int64_t>& ids, bool skip_special = false) const;

  // Adds tokens that are matched whole before BPE (Sa2VA's [SEG], <p>, ...), with ids after the current
  // highest; tokens already known keep their id. Returns the ids in the order given.
  std::vector<int64_t> add_tokens(const std::vector<std::string>& tokens, bool special);

  // Id of a vocabulary or added token; throws naming the token when absent.
  int64_t token_id(const std::string& token) const;
  bool has_token(const std::string& token) const;
  // Token text of an id (byte-level form for vocabulary tokens); throws when out of range.
  const std::string& id_to_token(int64_t id) const;
  // One past the highest id (vocabulary and added tokens).
  int64_t vocab_size() const;
  const std::vector<AddedToken>& added_tokens() const;

 private:
  struct State;
  explicit Tokenizer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace vesseltune::text
