#include "vesseltune/export/model_files.h"

#include "vesseltune/core/atomic_file.h"
#include "vesseltune/core/check.h"

namespace vesseltune::exporting {

namespace fs = std::filesystem;

std::vector<std::string> copy_remote_code(const std::string& config_json, const fs::path& folder) {
  const fs::path source = fs::is_directory(config_json) ? fs::path(config_json) : fs::path(config_json).parent_path();
  std::vector<std::string> copied;
  for (const auto& entry : fs::directory_iterator(source.empty() ? fs::path(".") : source)) {
    if (!entry.is_regular_file() || entry.path().extension() != ".py") continue;
    copy_file_atomically(entry.path().string(), (folder / entry.path().filename()).string());
    copied.push_back(entry.path().filename().string());
  }
  return copied;
}

}  // namespace vesseltune::exporting
