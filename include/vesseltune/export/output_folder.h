#pragma once
// The folder an export writes appears complete or not at all. Everything is written into OUT.tmp (a leftover of
// an export that crashed is removed first) and commit() renames it to OUT. An existing OUT is refused unless
// overwriting; then it is replaced only once the new folder is complete.

#include <filesystem>
#include <string>

namespace vesseltune::exporting {  // `export` is a C++ keyword

class OutputFolder {
 public:
  // Refuses an existing OUT (unless OVERWRITE) before any work is done; creates an empty OUT.tmp.
  OutputFolder(const std::string& out, bool overwrite);
  // Removes OUT.tmp when commit() was not reached (an error on the way leaves nothing behind).
  ~OutputFolder();
  OutputFolder(const OutputFolder&) = delete;
  OutputFolder& operator=(const OutputFolder&) = delete;

  // Where the files go until commit().
  const std::filesystem::path& staging() const { return staging_; }
  // The staging folder of OUT, for processes that write into it beside the one that owns the folder (MPI ranks).
  static std::filesystem::path staging_for(const std::string& out);
  // Renames OUT.tmp to OUT (replacing OUT when overwriting).
  void commit();

 private:
  std::filesystem::path out_;
  std::filesystem::path staging_;
  bool overwrite_;
  bool committed_ = false;
};

}  // namespace vesseltune::exporting
