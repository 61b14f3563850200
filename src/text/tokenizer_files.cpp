#include "vesseltune/text/tokenizer_files.h"

#include <filesystem>

#include "vesseltune/core/atomic_file.h"
#include "vesseltune/core/check.h"

namespace vesseltune::text {

namespace fs = std::filesystem;

std::vector<std::string> copy_tokenizer_files(const std::string& tokenizer_json, const std::string& folder) {
  VT_CHECK(fs::is_regular_file(tokenizer_json), "tokenizer '", tokenizer_json,
           "' does not exist (set model.tokenizer to where it is now: --set model.tokenizer=PATH)");
  const fs::path target(folder);
  copy_file_atomically(tokenizer_json, (target / "tokenizer.json").string());
  std::vector<std::string> copied = {"tokenizer.json"};
  const fs::path beside = fs::path(tokenizer_json).parent_path();
  for (const char* name : {"tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json",
                           "merges.txt", "chat_template.jinja", "generation_config.json"}) {
    if (!fs::is_regular_file(beside / name)) continue;
    copy_file_atomically((beside / name).string(), (target / name).string());
    copied.emplace_back(name);
  }
  return copied;
}

}  // namespace vesseltune::text
