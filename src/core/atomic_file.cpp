#include "vesseltune/core/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "vesseltune/core/check.h"
#include "vesseltune/core/remove_tree.h"

namespace vesseltune {

namespace {

std::string folder_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

// fsync of a file or folder by name; what was written under it survives a crash from here on.
void make_durable(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  VT_CHECK(fd >= 0, "cannot open '", path, "' to flush it: ", std::strerror(errno));
  const int synced = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  // Some file systems (tmpfs, a few network mounts) cannot sync a folder; the rename itself is still atomic.
  VT_CHECK(synced == 0 || error == EINVAL || error == EROFS, "cannot flush '", path, "' to disk: ",
           std::strerror(error));
}

bool is_folder(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0 && S_ISDIR(info.st_mode);
}

bool exists(const std::string& path) {
  struct stat info {};
  return ::stat(path.c_str(), &info) == 0;
}

}  // namespace

std::string temporary_path_for(const std::string& path) { return path + ".tmp"; }

void rename_into_place(const std::string& temporary, const std::string& path) {
  make_durable(temporary);
  VT_CHECK(std::rename(temporary.c_str(), path.c_str()) == 0, "cannot rename '", temporary, "' to '", path, "': ",
           std::strerror(errno));
  make_durable(folder_of(path));
}

void write_file_atomically(const std::string& path, const std::function<void(const std::string& temporary)>& write) {
  const std::string temporary = temporary_path_for(path);
  try {
    write(temporary);
  } catch (...) {
    std::remove(temporary.c_str());
    throw;
  }
  rename_into_place(temporary, path);
}

void write_text_file_atomically(const std::string& path, const std::string& text) {
  write_file_atomically(path, [&](const std::string& temporary) {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    VT_CHECK(out, "cannot create '", temporary, "'");
    out << text;
    out.close();
    VT_CHECK(out, "cannot write '", temporary, "' (disk full?)");
  });
}

void copy_file_atomically(const std::string& source, const std::string& path) {
  write_file_atomically(path, [&](const std::string& temporary) {
    std::error_code error;
    std::filesystem::copy_file(source, temporary, std::filesystem::copy_options::overwrite_existing, error);
    VT_CHECK(!error, "cannot copy '", source, "' to '", temporary, "': ", error.message());
  });
}

void move_folder_into_place(const std::string& staging, const std::string& path) {
  VT_CHECK(is_folder(staging), "cannot move '", staging, "' into place: not a folder");
  std::string old;
  if (exists(path)) {
    old = path + ".old-" + std::to_string(::getpid());
    VT_CHECK(std::rename(path.c_str(), old.c_str()) == 0, "cannot move '", path, "' aside: ", std::strerror(errno));
  }
  VT_CHECK(std::rename(staging.c_str(), path.c_str()) == 0, "cannot rename '", staging, "' to '", path, "': ",
           std::strerror(errno));
  make_durable(folder_of(path));
  if (!old.empty()) VT_CHECK(remove_tree(old), "cannot remove the replaced '", old, "': ", std::strerror(errno));
}

}  // namespace vesseltune
