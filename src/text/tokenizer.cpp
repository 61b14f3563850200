#include "vesseltune/text/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <utf8proc.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "vesseltune/core/check.h"

namespace vesseltune::text {
namespace {

using nlohmann::json;

// GPT-2's pre-tokenisation pattern, used when the ByteLevel pre-tokenizer runs its own regex.
constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Length in bytes of the UTF-8 sequence that starts with `lead` (1 for stray continuation bytes).
size_t utf8_length(unsigned char lead) {
  if (lead >= 0xF0) return 4;
  if (lead >= 0xE0) return 3;
  if (lead >= 0xC0) return 2;
  return 1;
}

// Compiled regex with its match data; PCRE2 objects are freed with their own functions.
struct Regex {
  std::shared_ptr<pcre2_code> code;

  explicit Regex(const std::string& pattern) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code* compiled = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                         PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
    if (compiled == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error, message, sizeof(message));
      VT_FAIL("tokenizer: cannot compile the pre-tokenisation regex at offset ", offset, ": ",
              reinterpret_cast<const char*>(message), " (pattern ", pattern, ")");
    }
    pcre2_jit_compile(compiled, PCRE2_JIT_COMPLETE);  // optional speed-up; matching works without it
    code.reset(compiled, pcre2_code_free);
  }

  // HF's Split with behaviour Isolated: every match and every gap between matches is a piece.
  std::vector<std::string> split(const std::string& text) const {
    std::vector<std::string> pieces;
    std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> match(
        pcre2_match_data_create_from_pattern(code.get(), nullptr), pcre2_match_data_free);
    size_t start = 0, gap_start = 0;
    while (start < text.size()) {
      int rc = pcre2_match(code.get(), reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), start, 0,
                           match.get(), nullptr);
      if (rc == PCRE2_ERROR_NOMATCH) break;
      VT_CHECK(rc >= 0, "tokenizer: regex match failed with PCRE2 code ", rc, " at byte ", start,
               " (is the text valid UTF-8?)");
      PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match.get());
      size_t begin = ovector[0], end = ovector[1];
      if (begin > gap_start) pieces.push_back(text.substr(gap_start, begin - gap_start));
      if (end > begin) {
        pieces.push_back(text.substr(begin, end - begin));
        start = end;
      } else {  // an empty match: step over one character so the scan makes progress
        start = begin + utf8_length(static_cast<unsigned char>(text[begin]));
      }
      gap_start = end > begin ? end : begin;
    }
    if (gap_start < text.size()) pieces.push_back(text.substr(gap_start));
    return pieces;
  }
};

std::string nfc(const std::string& text) {
  bool ascii = std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (ascii) return text;
  utf8proc_uint8_t* out = nullptr;
  utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(text.data()),
                                    static_cast<utf8proc_ssize_t>(text.size()), &out,
                                    static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  VT_CHECK(n >= 0, "tokenizer: NFC normalisation failed: ", utf8proc_errmsg(n), " (text is not valid UTF-8?)");
  std::string result(reinterpret_cast<char*>(out), static_cast<size_t>(n));
  std::free(out);
  return result;
}

}  // namespace

struct Tokenizer::State {
  std::string origin;
  std::unordered_map<std::string, int64_t> vocab;  // byte-level token → id (vocabulary and added tokens)
  std::vector<std::string> id_to_token;             // id → token; empty where no token has that id
  std::unordered_map<std::string, int> merge_rank;  // "left right" → rank
  std::vector<AddedToken> added;
  std::vector<char> is_special;                     // by id
  std::array<std::vector<int>, 256> added_by_first_byte;  // indices into `added`, longest first
  std::vector<Regex> splits;                         // applied in order, each on the pieces of the last
  bool normalize_nfc = false;
  std::array<std::string, 256> byte_to_unicode;
  std::unordered_map<uint32_t, unsigned char> unicode_to_byte;

  State() {
    // GPT-2's byte ↔ printable code point table: printable Latin-1 bytes map to themselves, the other 68
    // bytes to U+0100 onwards, in byte order.
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      uint32_t cp = printable ? static_cast<uint32_t>(b) : next++;
      append_utf8(byte_to_unicode[b], cp);
      unicode_to_byte[cp] = static_cast<unsigned char>(b);
    }
  }

  void set_token(int64_t id, const std::string& token) {
    VT_CHECK(id >= 0 && id < INT32_MAX, origin, ": token id ", id, " out of range for '", token, "'");
    if (static_cast<size_t>(id) >= id_to_token.size()) {
      id_to_token.resize(static_cast<size_t>(id) + 1);
      is_special.resize(static_cast<size_t>(id) + 1, 0);
    }
    id_to_token[static_cast<size_t>(id)] = token;
    vocab[token] = id;
  }

  void index_added() {
    for (auto& list : added_by_first_byte) list.clear();
    for (size_t i = 0; i < added.size(); ++i) {
      added_by_first_byte[static_cast<unsigned char>(added[i].content[0])].push_back(static_cast<int>(i));
    }
    for (auto& list : added_by_first_byte) {
      std::stable_sort(list.begin(), list.end(),
                       [&](int a, int b) { return added[a].content.size() > added[b].content.size(); });
    }
  }

  // Index into `added` of the longest added token starting at text[pos], or -1.
  int added_at(const std::string& text, size_t pos) const {
    for (int i : added_by_first_byte[static_cast<unsigned char>(text[pos])]) {
      const std::string& content = added[i].content;
      if (text.compare(pos, content.size(), content) == 0) return i;
    }
    return -1;
  }

  // BPE over one pre-tokenised piece in byte-level form: merge the adjacent pair of lowest rank (leftmost
  // among equals) until no pair has a rank, as HF's Word::merge_all does.
  void bpe(const std::string& piece, std::vector<int64_t>& ids) const {
    std::vector<std::string> symbols;
    for (size_t i = 0; i < piece.size();) {
      size_t n = utf8_length(static_cast<unsigned char>(piece[i]));
      symbols.push_back(piece.substr(i, n));
      i += n;
    }
    std::string key;
    while (symbols.size() > 1) {
      int best_rank = INT_MAX;
      size_t best = 0;
      for (size_t i = 0; i + 1 < symbols.size(); ++i) {
        key.assign(symbols[i]).append(" ").append(symbols[i + 1]);
        auto it = merge_rank.find(key);
        if (it != merge_rank.end() && it->second < best_rank) {
          best_rank = it->second;
          best = i;
        }
      }
      if (best_rank == INT_MAX) break;
      symbols[best] += symbols[best + 1];
      symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(best) + 1);
    }
    for (const std::string& symbol : symbols) {
      auto it = vocab.find(symbol);
      VT_CHECK(it != vocab.end(), origin, ": BPE produced '", symbol, "', which is not in the vocabulary");
      ids.push_back(it->second);
    }
  }

  void read_pre_tokenizer(const json& node) {
    if (node.is_null()) return;
    const std::string type = node.value("type", "");
    if (type == "Sequence") {
      for (const json& child : node.at("pretokenizers")) read_pre_tokenizer(child);
    } else if (type == "Split") {
      VT_CHECK(node.at("pattern").contains("Regex"), origin, ": pre_tokenizer Split needs a Regex pattern");
      VT_CHECK(node.value("behavior", "") == "Isolated" && !node.value("invert", false), origin,
               ": only Split with behavior Isolated (not inverted) is supported, got ", node.dump());
      splits.emplace_back(node.at("pattern").at("Regex").get<std::string>());
    } else if (type == "ByteLevel") {
      VT_CHECK(!node.value("add_prefix_space", false), origin, ": ByteLevel add_prefix_space is not supported");
      if (node.value("use_regex", true)) splits.emplace_back(kGpt2Pattern);
    } else {
      VT_FAIL(origin, ": unsupported pre_tokenizer type '", type, "'");
    }
  }

  void encode_segment(const std::string& segment, std::vector<int64_t>& ids) const {
    std::vector<std::string> pieces{normalize_nfc ? nfc(segment) : segment};
    for (const Regex& regex : splits) {
      std::vector<std::string> next;
      for (const std::string& piece : pieces) {
        for (std::string& part : regex.split(piece)) next.push_back(std::move(part));
      }
      pieces = std::move(next);
    }
    std::string mapped;
    for (const std::string& piece : pieces) {
      mapped.clear();
      for (unsigned char byte : piece) mapped += byte_to_unicode[byte];
      bpe(mapped, ids);
    }
  }
};

Tokenizer Tokenizer::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  VT_CHECK(in.good(), "tokenizer: cannot open ", path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return from_json_text(buffer.str(), path);
}

Tokenizer Tokenizer::from_json_text(const std::string& json_text, const std::string& origin) {
  auto state = std::make_unique<State>();
  state->origin = origin;
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::exception& e) {
    VT_FAIL(origin, ": not valid JSON: ", e.what());
  }
  try {
    const json& model = root.at("model");
    VT_CHECK(model.value("type", "BPE") == "BPE", origin, ": model.type must be BPE, got ", model.value("type", ""));
    VT_CHECK(model.value("continuing_subword_prefix", "").empty() && model.value("end_of_word_suffix", "").empty(),
             origin, ": BPE subword prefixes or suffixes are not supported");
    for (const auto& [token, id] : model.at("vocab").items()) state->set_token(id.get<int64_t>(), token);
    int rank = 0;
    for (const json& merge : model.at("merges")) {
      std::string key;
      if (merge.is_array()) {
        VT_CHECK(merge.size() == 2, origin, ": merge ", rank, " must have two parts");
        key = merge[0].get<std::string>() + " " + merge[1].get<std::string>();
      } else {
        key = merge.get<std::string>();
      }
      state->merge_rank.emplace(key, rank++);
    }
    const json& normalizer = root.value("normalizer", json());
    if (!normalizer.is_null()) {
      VT_CHECK(normalizer.value("type", "") == "NFC", origin, ": unsupported normalizer ", normalizer.dump());
      state->normalize_nfc = true;
    }
    state->read_pre_tokenizer(root.value("pre_tokenizer", json()));
    const json& decoder = root.value("decoder", json());
    VT_CHECK(decoder.is_null() || decoder.value("type", "") == "ByteLevel", origin,
             ": only the ByteLevel decoder is supported, got ", decoder.dump());
    for (const json& token : root.value("added_tokens", json::array())) {
      AddedToken added{token.at("id").get<int64_t>(), token.at("content").get<std::string>(),
                       token.value("special", false)};
      VT_CHECK(!added.content.empty(), origin, ": added token ", added.id, " is empty");
      VT_CHECK(!token.value("lstrip", false) && !token.value("rstrip", false) && !token.value("single_word", false),
               origin, ": added token '", added.content, "' uses lstrip/rstrip/single_word, which is not supported");
      state->set_token(added.id, added.content);
      state->is_special[static_cast<size_t>(added.id)] = added.special;
      state->added.push_back(added);
    }
  } catch (const json::exception& e) {
    VT_FAIL(origin, ": malformed tokenizer.json: ", e.what());
  }
  state->index_added();
  return Tokenizer(std::move(state));
}

Tokenizer::Tokenizer(std::unique_ptr<State> state) : state_(std::move(state)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

std::vector<int64_t> Tokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  size_t segment_start = 0;
  for (size_t pos = 0; pos < text.size();) {
    int index = state_->added_at(text, pos);
    if (index < 0) {
      ++pos;
      continue;
    }
    if (pos > segment_start) state_->encode_segment(text.substr(segment_start, pos - segment_start), ids);
    ids.push_back(state_->added[static_cast<size_t>(index)].id);
    pos += state_->added[static_cast<size_t>(index)].content.size();
    segment_start = pos;
  }
  if (segment_start < text.size()) state_->encode_segment(text.substr(segment_start), ids);
  return ids;
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids, bool skip_special) const {
  std::string joined;
  for (int64_t id : ids) {
    const std::string& token = id_to_token(id);  // validates the id
    if (skip_special && state_->is_special[static_cast<size_t>(id)]) continue;
    joined += token;
  }
  // Byte-level code points back to bytes; characters outside the table (in added tokens) stay as they are.
  std::string bytes;
  for (size_t i = 0; i < joined.size();) {
    size_t n = utf8_length(static_cast<unsigned char>(joined[i]));
    uint32_t cp = 0;
    int32_t decoded = 0;
    utf8proc_ssize_t used = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(joined.data() + i),
                                             static_cast<utf8proc_ssize_t>(std::min(n, joined.size() - i)), &decoded);
    if (used > 0) cp = static_cast<uint32_t>(decoded);
    auto it = used > 0 ? state_->unicode_to_byte.find(cp) : state_->unicode_to_byte.end();
    if (it != state_->unicode_to_byte.end()) {
      bytes += static_cast<char>(it->second);
    } else {
      bytes.append(joined, i, n);
    }
    i += n;
  }
  return bytes;
}

std::vector<int64_t> Tokenizer::add_tokens(const std::vector<std::string>& tokens, bool special) {
  std::vector<int64_t> ids;
  for (const std::string& token : tokens) {
    VT_CHECK(!token.empty(), "tokenizer: cannot add an empty token");
    auto it = state_->vocab.find(token);
    bool already_added = std::any_of(state_->added.begin(), state_->added.end(),
                                     [&](const AddedToken& a) { return a.content == token; });
    int64_t id = it != state_->vocab.end() ? it->second : vocab_size();
    if (!already_added) {
      state_->set_token(id, token);
      state_->is_special[static_cast<size_t>(id)] = special;
      state_->added.push_back(AddedToken{id, token, special});
    }
    ids.push_back(id);
  }
  state_->index_added();
  return ids;
}

int64_t Tokenizer::token_id(const std::string& token) const {
  auto it = state_->vocab.find(token);
  VT_CHECK(it != state_->vocab.end(), state_->origin, ": no token '", token, "'");
  return it->second;
}

bool Tokenizer::has_token(const std::string& token) const { return state_->vocab.count(token) > 0; }

const std::string& Tokenizer::id_to_token(int64_t id) const {
  VT_CHECK(id >= 0 && id < vocab_size() && !state_->id_to_token[static_cast<size_t>(id)].empty(), state_->origin,
           ": token id ", id, " is not in the vocabulary (size ", vocab_size(), ")");
  return state_->id_to_token[static_cast<size_t>(id)];
}

int64_t Tokenizer::vocab_size() const { return static_cast<int64_t>(state_->id_to_token.size()); }

const std::vector<AddedToken>& Tokenizer::added_tokens() const { return state_->added; }

}  // namespace vesseltune::text
