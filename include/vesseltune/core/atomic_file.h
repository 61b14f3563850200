#pragma once
// Files and folders that appear complete or not at all. A writer fills a temporary beside the final name (PATH.tmp),
// makes it durable, then one rename puts it in place and the folder's entry is made durable too: a crash at any
// moment leaves the old version or the new one whole, plus at most a PATH.tmp leftover that no reader takes.
// (C's rename, not std::filesystem's: see remove_tree.h.)

#include <functional>
#include <string>

namespace vesseltune {

// PATH.tmp: where the next version of PATH is written before it is renamed into place.
std::string temporary_path_for(const std::string& path);

// Flushes TEMPORARY (a complete file) to disk and renames it to PATH, replacing any older PATH.
void rename_into_place(const std::string& temporary, const std::string& path);

// WRITE fills the file it is given (PATH.tmp, truncated or absent); then rename_into_place. If WRITE throws, the
// temporary is removed and PATH is untouched.
void write_file_atomically(const std::string& path, const std::function<void(const std::string& temporary)>& write);

// TEXT as the whole content of PATH, atomically.
void write_text_file_atomically(const std::string& path, const std::string& text);

// A copy of the file SOURCE as PATH, atomically. Errors name both.
void copy_file_atomically(const std::string& source, const std::string& path);

// Replaces the folder PATH by the complete folder STAGING: an older PATH is moved aside to PATH.old-PID, STAGING
// renamed into place, and only then the old one removed.
void move_folder_into_place(const std::string& staging, const std::string& path);

}  // namespace vesseltune
