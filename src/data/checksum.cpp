#include "vesseltune/data/checksum.h"

#include <cstdio>
#include <fstream>
#include <vector>

#include "vesseltune/core/check.h"
#include "vesseltune/data/zlib_stream.h"

namespace vesseltune::data {

uint32_t file_crc32(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  VT_CHECK(in, "cannot open ", path.string(), " to compute its checksum");
  std::vector<char> buffer(1 << 20);
  uint32_t crc = 0;
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize got = in.gcount();
    if (got > 0) crc = crc32_update(crc, buffer.data(), static_cast<size_t>(got));
  }
  VT_CHECK(in.eof(), "error reading ", path.string(), " to compute its checksum");
  return crc;
}

std::string crc32_hex(uint32_t crc) {
  char text[9];
  std::snprintf(text, sizeof text, "%08x", crc);
  return text;
}

}  // namespace vesseltune::data
