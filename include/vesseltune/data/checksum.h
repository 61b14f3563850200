#pragma once
// CRC-32 (zlib's, the one Python's zlib.crc32 computes) of a whole file, used to refuse shards that
// changed after the manifest was written.

#include <cstdint>
#include <filesystem>
#include <string>

namespace vesseltune::data {

uint32_t file_crc32(const std::filesystem::path& path);

// Eight lowercase hex digits, as written in the manifest ("%08x").
std::string crc32_hex(uint32_t crc);

}  // namespace vesseltune::data
