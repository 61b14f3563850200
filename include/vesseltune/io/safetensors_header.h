#pragma once
// The safetensors header, parsed and checked without trusting the file: checkpoints come from the internet.
// Layout: 8-byte little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "BF16", "shape": [2, 3], "data_offsets": [begin, end]}, ..., "__metadata__": {...}},
// then the data buffer, to which the offsets are relative. Depends on nothing but the JSON parser, so that the
// fuzzer (tests/io/fuzz_safetensors_header.cpp) can drive it alone.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace vesseltune::io {

struct HeaderEntry {
  std::string name;
  std::string dtype;  // safetensors spelling: F64 F32 F16 BF16 I64 I32 I16 I8 U8 BOOL
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // byte offsets into the data buffer
  uint64_t end = 0;
};

struct Header {
  std::vector<HeaderEntry> entries;  // in the order of their offsets
  std::map<std::string, std::string> metadata;
  uint64_t data_offset = 0;  // where the data buffer starts in the file (8 + N)
};

// Bytes per element of a safetensors dtype, or 0 when unknown.
size_t dtype_size(const std::string& dtype);

// Parses and validates `size` bytes holding at least the whole header; `file_size` is the size of the whole
// file. Refuses (vesseltune::Error naming `source` and the tensor) a header longer than the file or than
// 100 MiB, invalid JSON, unknown dtypes, negative or overflowing shapes, offsets outside the data buffer,
// a byte size that does not match the shape, and overlapping tensors.
Header parse_safetensors_header(const uint8_t* bytes, size_t size, uint64_t file_size, const std::string& source);

// The 8-byte length prefix plus JSON header (padded with spaces to 8 bytes) for tensors laid out in order.
std::string make_safetensors_header(const std::vector<HeaderEntry>& entries,
                                    const std::map<std::string, std::string>& metadata);

}  // namespace vesseltune::io
