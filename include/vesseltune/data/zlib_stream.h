#pragma once
// The zlib streams inside the shards (HDF5's deflate filter stores each chunk as one zlib stream, so h5py
// and any HDF5 reader inflate them), made and read with libdeflate: it inflates a whole buffer in one
// call 2-3× faster than zlib's streaming inflate, which is most of what reading a large fundus image costs.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vesseltune::data {

// RAW as one zlib stream at LEVEL (1 fastest .. 12 smallest; 6 is zlib's default trade-off).
std::vector<uint8_t> zlib_compress(const std::vector<uint8_t>& raw, int level);

// Inflates the zlib stream STREAM (BYTES long) into exactly SIZE bytes at OUT; false when the stream is
// corrupt or does not inflate to exactly SIZE bytes.
bool zlib_decompress(const uint8_t* stream, size_t bytes, uint8_t* out, size_t size);

// CRC-32 as zlib and Python's zlib.crc32 compute it, continued from CRC (0 to start).
uint32_t crc32_update(uint32_t crc, const void* data, size_t bytes);

}  // namespace vesseltune::data
