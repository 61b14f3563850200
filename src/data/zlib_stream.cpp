#include "vesseltune/data/zlib_stream.h"

#include <libdeflate.h>

#include <memory>

#include "vesseltune/core/check.h"

namespace vesseltune::data {

namespace {

struct FreeCompressor {
  void operator()(libdeflate_compressor* c) const { libdeflate_free_compressor(c); }
};
struct FreeDecompressor {
  void operator()(libdeflate_decompressor* d) const { libdeflate_free_decompressor(d); }
};

}  // namespace

std::vector<uint8_t> zlib_compress(const std::vector<uint8_t>& raw, int level) {
  VT_CHECK(level >= 1 && level <= 12, "compression level ", level, " is outside 1..12");
  std::unique_ptr<libdeflate_compressor, FreeCompressor> compressor(libdeflate_alloc_compressor(level));
  VT_CHECK(compressor, "cannot allocate a deflate compressor (level ", level, ")");
  std::vector<uint8_t> out(libdeflate_zlib_compress_bound(compressor.get(), raw.size()));
  const size_t size = libdeflate_zlib_compress(compressor.get(), raw.data(), raw.size(), out.data(), out.size());
  VT_CHECK(size > 0, "deflate of ", raw.size(), " bytes failed");
  out.resize(size);
  return out;
}

bool zlib_decompress(const uint8_t* stream, size_t bytes, uint8_t* out, size_t size) {
  // One decompressor per thread: it is a few KB of tables, reused for every chunk the thread reads.
  thread_local std::unique_ptr<libdeflate_decompressor, FreeDecompressor> decompressor(libdeflate_alloc_decompressor());
  VT_CHECK(decompressor, "cannot allocate a deflate decompressor");
  size_t produced = 0;
  return libdeflate_zlib_decompress(decompressor.get(), stream, bytes, out, size, &produced) == LIBDEFLATE_SUCCESS &&
         produced == size;
}

uint32_t crc32_update(uint32_t crc, const void* data, size_t bytes) { return libdeflate_crc32(crc, data, bytes); }

}  // namespace vesseltune::data
