#include "vesseltune/core/remove_tree.h"

#include <ftw.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace vesseltune {

bool remove_tree(const std::string& path) noexcept {
  if (::access(path.c_str(), F_OK) != 0 && errno == ENOENT) return true;
  // Depth first (FTW_DEPTH) so directories are empty when removed; FTW_PHYS: never follow symbolic links.
  auto remove_one = [](const char* item, const struct stat*, int, struct FTW*) { return std::remove(item); };
  return ::nftw(path.c_str(), remove_one, 16, FTW_DEPTH | FTW_PHYS) == 0;
}

}  // namespace vesseltune
