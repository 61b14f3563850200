#pragma once
// The files of a Hugging Face model folder besides weights and config.json, copied from where the run found them:
// the tokenizer with its companions, and the model's remote code.

#include <filesystem>
#include <string>
#include <vector>

namespace vesseltune::exporting {

// Copies TOKENIZER_JSON into FOLDER as tokenizer.json, with the files of a Hugging Face tokenizer that sit next to
// it (tokenizer_config.json, special_tokens_map.json, added_tokens.json, vocab.json, merges.txt,
// chat_template.jinja, generation_config.json). Returns the names written.
std::vector<std::string> copy_tokenizer_files(const std::string& tokenizer_json, const std::filesystem::path& folder);

// Copies the Python files (*.py: Sa2VA's configuration_sa2va_chat.py, modeling_sa2va_chat.py, ...) of the folder
// holding CONFIG_JSON into FOLDER: transformers loads Sa2VA with trust_remote_code from them. Returns the names.
std::vector<std::string> copy_remote_code(const std::string& config_json, const std::filesystem::path& folder);

}  // namespace vesseltune::exporting
