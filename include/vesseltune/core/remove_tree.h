#pragma once
// Recursive removal of a file or directory tree, in place of std::filesystem::remove_all: the libtorch.so inside
// PyTorch 2.11 (the GPU machine's LibTorch) exports its own std::filesystem::remove_all, which jumps to a null
// address; every binary that links LibTorch resolves the call there and crashes (seen in test_model_io).

#include <string>

namespace vesseltune {

// Removes `path` and everything below it; a missing path is fine. Returns false (errno set) on failure.
bool remove_tree(const std::string& path) noexcept;

}  // namespace vesseltune
