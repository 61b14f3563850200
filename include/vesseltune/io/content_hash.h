#pragma once
// xxHash64 (seed 0) of bytes: the strong checksum that checkpoints and metrics files store beside HDF5's
// Fletcher-32, which cannot tell a run of 0x0000 words from 0xFFFF.

#include <cstddef>
#include <cstdint>

namespace vesseltune::io {

uint64_t content_hash(const void* data, size_t bytes);

}  // namespace vesseltune::io
