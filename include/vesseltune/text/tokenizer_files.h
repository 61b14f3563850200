#pragma once
// A Hugging Face tokenizer as files: tokenizer.json (what vesseltune reads) and the companions transformers reads
// beside it. Copied as a set, so that a run keeps its own copy (WORK_DIR/tokenizer/) and an export ships it.

#include <string>
#include <vector>

namespace vesseltune::text {

// Copies TOKENIZER_JSON into FOLDER (which must exist) as tokenizer.json, with the files of a Hugging Face tokenizer
// that sit next to it (tokenizer_config.json, special_tokens_map.json, added_tokens.json, vocab.json, merges.txt,
// chat_template.jinja, generation_config.json), each atomically. Returns the names written.
std::vector<std::string> copy_tokenizer_files(const std::string& tokenizer_json, const std::string& folder);

}  // namespace vesseltune::text
