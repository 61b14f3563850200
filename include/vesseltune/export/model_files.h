#pragma once
// The model's remote code, copied into a Hugging Face model folder from where the run found its config.json (the
// tokenizer's files: text/tokenizer_files.h).

#include <filesystem>
#include <string>
#include <vector>

namespace vesseltune::exporting {

// Copies the Python files (*.py: Sa2VA's configuration_sa2va_chat.py, modeling_sa2va_chat.py, ...) of the folder
// holding CONFIG_JSON into FOLDER: transformers loads Sa2VA with trust_remote_code from them. Returns the names.
std::vector<std::string> copy_remote_code(const std::string& config_json, const std::filesystem::path& folder);

}  // namespace vesseltune::exporting
