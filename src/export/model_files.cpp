#include "vesseltune/export/model_files.h"

#include "vesseltune/core/check.h"

namespace vesseltune::exporting {

namespace fs = std::filesystem;

namespace {

void copy_into(const fs::path& source, const fs::path& target) {
  std::error_code error;
  fs::copy_file(source, target, fs::copy_options::overwrite_existing, error);
  VT_CHECK(!error, "cannot copy '", source.string(), "' to '", target.string(), "': ", error.message());
}

}  // namespace

std::vector<std::string> copy_tokenizer_files(const std::string& tokenizer_json, const fs::path& folder) {
  VT_CHECK(fs::is_regular_file(tokenizer_json), "tokenizer '", tokenizer_json,
           "' does not exist (set model.tokenizer to where it is now: --set model.tokenizer=PATH)");
  copy_into(tokenizer_json, folder / "tokenizer.json");
  std::vector<std::string> copied = {"tokenizer.json"};
  const fs::path beside = fs::path(tokenizer_json).parent_path();
  for (const char* name : {"tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.json",
                           "merges.txt", "chat_template.jinja", "generation_config.json"}) {
    if (!fs::is_regular_file(beside / name)) continue;
    copy_into(beside / name, folder / name);
    copied.emplace_back(name);
  }
  return copied;
}

std::vector<std::string> copy_remote_code(const std::string& config_json, const fs::path& folder) {
  const fs::path source = fs::is_directory(config_json) ? fs::path(config_json) : fs::path(config_json).parent_path();
  std::vector<std::string> copied;
  for (const auto& entry : fs::directory_iterator(source.empty() ? fs::path(".") : source)) {
    if (!entry.is_regular_file() || entry.path().extension() != ".py") continue;
    copy_into(entry.path(), folder / entry.path().filename());
    copied.push_back(entry.path().filename().string());
  }
  return copied;
}

}  // namespace vesseltune::exporting
