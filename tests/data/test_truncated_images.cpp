// Image files cut short (a copy interrupted, a download that stopped) are decode errors naming the file, in every
// format vesseltune-pack reads: never an image with garbage or blank rows after the cut.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "image_files.h"
#include "vesseltune/core/check.h"
#include "vesseltune/data/codec.h"

namespace vesseltune::data {
namespace {

namespace fs = std::filesystem;
using namespace testing;

struct Format {
  std::string extension;
  std::function<void(const fs::path&)> write;
};

// A baseline RGB TIFF written with its directory first and the strips after it, as many cameras and tools write
// them (libtiff puts the directory last, so a cut file of its own does not even open).
void write_tiff_directory_first(const fs::path& path, const Image& image) {
  const uint32_t rows_per_strip = 8, strips = (image.height + rows_per_strip - 1) / rows_per_strip;
  const uint32_t entries = 10, ifd = 8, arrays = ifd + 2 + 12 * entries + 4;
  const uint32_t bits = arrays, offsets = bits + 6, counts = offsets + 4 * strips, data = counts + 4 * strips;
  std::string out("II*\0", 4);
  auto u16 = [&](uint32_t v) { out.push_back(static_cast<char>(v & 0xff)); out.push_back(static_cast<char>(v >> 8)); };
  auto u32 = [&](uint32_t v) { u16(v & 0xffff); u16(v >> 16); };
  auto entry = [&](uint16_t tag, uint16_t type, uint32_t count, uint32_t value) { u16(tag); u16(type); u32(count); u32(value); };
  u32(ifd);
  u16(entries);
  entry(256, 4, 1, image.width);
  entry(257, 4, 1, image.height);
  entry(258, 3, 3, bits);
  entry(259, 3, 1, 1);  // no compression
  entry(262, 3, 1, 2);  // RGB
  entry(273, 4, strips, offsets);
  entry(277, 3, 1, 3);
  entry(278, 4, 1, rows_per_strip);
  entry(279, 4, strips, counts);
  entry(284, 3, 1, 1);
  u32(0);
  for (int i = 0; i < 3; ++i) u16(8);
  const uint32_t strip_bytes = rows_per_strip * image.width * 3;
  for (uint32_t s = 0; s < strips; ++s) u32(data + s * strip_bytes);
  for (uint32_t s = 0; s < strips; ++s) {
    const uint32_t rows = std::min<uint32_t>(rows_per_strip, image.height - s * rows_per_strip);
    u32(rows * image.width * 3);
  }
  out.append(reinterpret_cast<const char*>(image.pixels.data()), image.pixels.size());
  std::ofstream(path, std::ios::binary) << out;
}

std::vector<Format> formats() {
  const Image colour = smooth_image(48, 64, 3, 1), grey = pattern_mask(48, 64, 2);
  return {{".tif", [=](const fs::path& p) { write_tiff_directory_first(p, colour); }},
          {".TIF", [=](const fs::path& p) { write_tiff(p, colour, false); }},
          {".tiff", [=](const fs::path& p) { write_tiff(p, colour, true); }},
          {".png", [=](const fs::path& p) { testing::write_png(p, colour); }},
          {".jpg", [=](const fs::path& p) { write_jpg(p, colour); }},
          {".gif", [=](const fs::path& p) { write_gif(p, grey); }},
          {".ppm", [=](const fs::path& p) { write_pnm(p, colour); }}};
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(TruncatedImages, EveryFormatCutAtSeveralPointsIsADecodeErrorNamingTheFile) {
  const fs::path dir = fs::temp_directory_path() / ("vt_truncated_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (const Format& format : formats()) {
    const fs::path whole = dir / ("whole" + format.extension);
    format.write(whole);
    EXPECT_NO_THROW(decode_image(whole)) << whole;
    const std::string bytes = read_bytes(whole);
    for (const double fraction : {0.34, 0.5, 0.67, 0.9}) {
      const size_t keep = static_cast<size_t>(fraction * static_cast<double>(bytes.size()));
      const fs::path cut = dir / ("cut_" + std::to_string(keep) + format.extension);
      std::ofstream(cut, std::ios::binary) << bytes.substr(0, keep);
      try {
        decode_image(cut);
        ADD_FAILURE() << format.extension << " cut to " << keep << " of " << bytes.size() << " bytes decoded";
      } catch (const Error& error) {
        EXPECT_NE(std::string(error.what()).find(cut.string()), std::string::npos) << error.what();
      }
    }
  }
  fs::remove_all(dir);
}

// Headers that claim no pixels (found by the decoder fuzzer: a PGM whose height is not a number decoded as 8x0) or
// more than any vessel image has are errors naming the file, before anything is allocated for them.
TEST(DamagedHeaders, NoPixelsOrTooManyAreDecodeErrorsNamingTheFile) {
  const fs::path dir = fs::temp_directory_path() / ("vt_headers_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  struct Case {
    std::string name, bytes, expected;
  };
  const std::vector<Case> cases = {
      {"no_height.pgm", std::string("P5\n8 \xc6\n255\n") + std::string(64, '\x10'), "its size is 8x0"},
      {"huge.pgm", std::string("P5\n100000 100000\n255\n") + std::string(64, '\x10'), "more than vesseltune reads"},
  };
  for (const auto& [name, bytes, expected] : cases) {
    const fs::path path = dir / name;
    std::ofstream(path, std::ios::binary) << bytes;
    try {
      decode_image(path);
      ADD_FAILURE() << name << " decoded";
    } catch (const Error& error) {
      EXPECT_NE(std::string(error.what()).find(path.string()), std::string::npos) << error.what();
      EXPECT_NE(std::string(error.what()).find(expected), std::string::npos) << error.what();
    }
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace vesseltune::data
