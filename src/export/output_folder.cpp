#include "vesseltune/export/output_folder.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "vesseltune/core/atomic_file.h"
#include "vesseltune/core/check.h"
#include "vesseltune/core/remove_tree.h"

namespace vesseltune::exporting {

namespace fs = std::filesystem;

namespace {

fs::path folder_path(const std::string& out) {
  fs::path path = fs::path(out).lexically_normal();
  if (!path.has_filename()) path = path.parent_path();  // "merged/" names the folder "merged"
  VT_CHECK(path.has_filename() && path.filename() != "." && path.filename() != "..", "output folder '", out,
           "' must name a folder");
  return path;
}

}  // namespace

fs::path OutputFolder::staging_for(const std::string& out) { return temporary_path_for(folder_path(out).string()); }

OutputFolder::OutputFolder(const std::string& out, bool overwrite) : out_(folder_path(out)), overwrite_(overwrite) {
  VT_CHECK(overwrite_ || !fs::exists(out_), "output folder '", out_.string(),
           "' exists already: choose another --out, or replace it with --overwrite");
  staging_ = staging_for(out);
  // A leftover of an export that died: never complete, never read.
  VT_CHECK(remove_tree(staging_.string()), "cannot remove the leftover '", staging_.string(), "': ", std::strerror(errno));
  fs::create_directories(staging_);
}

OutputFolder::~OutputFolder() {
  if (!committed_) remove_tree(staging_.string());
}

void OutputFolder::commit() {
  VT_CHECK(!committed_, "output folder '", out_.string(), "' committed twice");
  VT_CHECK(overwrite_ || !fs::exists(out_), "output folder '", out_.string(),
           "' appeared while exporting; nothing replaced");
  move_folder_into_place(staging_.string(), out_.string());  // only now does OUT change
  committed_ = true;
}

}  // namespace vesseltune::exporting
