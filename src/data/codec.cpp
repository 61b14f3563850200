#include "vesseltune/data/codec.h"

#include <stb_image.h>
#include <stb_image_write.h>
#include <tiffio.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <system_error>
#include <vector>

#include "vesseltune/core/atomic_file.h"
#include "vesseltune/core/check.h"
#include "stb_input_checks.h"

namespace vesseltune::data {

namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

std::vector<uint8_t> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  VT_CHECK(in, "cannot open image ", path.string());
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  VT_CHECK(!bytes.empty(), "image file ", path.string(), " is empty");
  return bytes;
}

std::vector<uint8_t> read_gzip(const std::filesystem::path& path) {
  std::unique_ptr<gzFile_s, int (*)(gzFile)> file(gzopen(path.c_str(), "rb"), gzclose);
  VT_CHECK(file, "cannot open image ", path.string());
  std::vector<uint8_t> bytes;
  std::vector<uint8_t> buffer(1 << 16);
  for (;;) {
    const int got = gzread(file.get(), buffer.data(), static_cast<unsigned>(buffer.size()));
    VT_CHECK(got >= 0, "cannot decompress ", path.string(), " (corrupt gzip)");
    if (got == 0) break;
    bytes.insert(bytes.end(), buffer.begin(), buffer.begin() + got);
  }
  VT_CHECK(!bytes.empty(), "image file ", path.string(), " is empty after decompression");
  return bytes;
}

// Keeps 1 channel for grey (+alpha) input and 3 for colour (+alpha).
Image from_stb(uint8_t* pixels, int width, int height, int channels_in_file) {
  const int keep = channels_in_file <= 2 ? 1 : 3;
  Image image(height, width, keep);
  const size_t count = static_cast<size_t>(width) * height;
  for (size_t i = 0; i < count; ++i) {
    for (int c = 0; c < keep; ++c) image.pixels[i * keep + c] = pixels[i * channels_in_file + c];
  }
  return image;
}

// A header's size, before anything that large is allocated: some pixels, and at most kMaxPixels (a damaged header
// would otherwise claim gigabytes).
#ifndef VT_MAX_IMAGE_PIXELS
#define VT_MAX_IMAGE_PIXELS (int64_t{1} << 27)  // the fuzzer builds with less, to keep each input fast
#endif
constexpr int64_t kMaxPixels = VT_MAX_IMAGE_PIXELS;
void check_size(int64_t width, int64_t height, const std::filesystem::path& path) {
  VT_CHECK(width > 0 && height > 0, "cannot decode image ", path.string(), ": its size is ", width, "x", height);
  VT_CHECK(width * height <= kMaxPixels, "cannot decode image ", path.string(), ": ", width, "x", height,
           " pixels is more than vesseltune reads (", kMaxPixels, "; a damaged header?)");
}

Image decode_with_stb(const std::vector<uint8_t>& bytes, const std::filesystem::path& path) {
  int width = 0, height = 0, channels = 0;
  if (stbi_info_from_memory(bytes.data(), static_cast<int>(bytes.size()), &width, &height, &channels)) {
    check_size(width, height, path);
  }
  const std::string damage = stb_input_damage(bytes);
  VT_CHECK(damage.empty(), "cannot decode image ", path.string(), ": ", damage);
  std::unique_ptr<uint8_t, void (*)(void*)> pixels(
      stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &width, &height, &channels, 0),
      stbi_image_free);
  VT_CHECK(pixels, "cannot decode image ", path.string(), ": ", stbi_failure_reason());
  check_size(width, height, path);
  return from_stb(pixels.get(), width, height, channels);
}

// libtiff reads from a path (no data set ships gzipped TIFFs, so those are refused above).
Image decode_tiff(const std::filesystem::path& path) {
  static std::once_flag quiet;
  std::call_once(quiet, [] {
    // We report failures ourselves, with the file name; DRIVE's TIFFs also trigger harmless tag warnings.
    TIFFSetWarningHandler(nullptr);
    TIFFSetErrorHandler(nullptr);
  });
  std::unique_ptr<TIFF, void (*)(TIFF*)> tiff(TIFFOpen(path.c_str(), "r"), TIFFClose);
  VT_CHECK(tiff, "cannot decode image ", path.string(), ": not a readable TIFF");
  uint32_t width = 0, height = 0;
  uint16_t samples = 1, photometric = PHOTOMETRIC_MINISBLACK;
  TIFFGetField(tiff.get(), TIFFTAG_IMAGEWIDTH, &width);
  TIFFGetField(tiff.get(), TIFFTAG_IMAGELENGTH, &height);
  TIFFGetFieldDefaulted(tiff.get(), TIFFTAG_SAMPLESPERPIXEL, &samples);
  TIFFGetFieldDefaulted(tiff.get(), TIFFTAG_PHOTOMETRIC, &photometric);
  check_size(static_cast<int64_t>(width), static_cast<int64_t>(height), path);
  std::vector<uint32_t> rgba(static_cast<size_t>(width) * height);
  // Stop on the first read error: without it, libtiff fills the strips after a cut with whatever it has.
  VT_CHECK(TIFFReadRGBAImageOriented(tiff.get(), width, height, rgba.data(), ORIENTATION_TOPLEFT, 1) == 1,
           "cannot decode image ", path.string(), ": corrupt, truncated or unsupported TIFF");
  const bool grey = (photometric == PHOTOMETRIC_MINISBLACK || photometric == PHOTOMETRIC_MINISWHITE) && samples <= 2;
  Image image(static_cast<int>(height), static_cast<int>(width), grey ? 1 : 3);
  for (size_t i = 0; i < rgba.size(); ++i) {
    const uint32_t p = rgba[i];
    if (grey) {
      image.pixels[i] = static_cast<uint8_t>(TIFFGetR(p));
    } else {
      image.pixels[3 * i] = static_cast<uint8_t>(TIFFGetR(p));
      image.pixels[3 * i + 1] = static_cast<uint8_t>(TIFFGetG(p));
      image.pixels[3 * i + 2] = static_cast<uint8_t>(TIFFGetB(p));
    }
  }
  return image;
}

bool is_tiff(const std::vector<uint8_t>& bytes) {
  return bytes.size() >= 4 && ((bytes[0] == 'I' && bytes[1] == 'I' && bytes[2] == 42 && bytes[3] == 0) ||
                               (bytes[0] == 'M' && bytes[1] == 'M' && bytes[2] == 0 && bytes[3] == 42));
}

}  // namespace

Image decode_image(const std::filesystem::path& path) {
  VT_CHECK(std::filesystem::is_regular_file(path), "image file ", path.string(), " does not exist");
  const std::string extension = lower(path.extension().string());
  if (extension == ".gz") {
    const std::vector<uint8_t> bytes = read_gzip(path);
    VT_CHECK(!is_tiff(bytes), "cannot decode image ", path.string(), ": gzipped TIFF is not supported");
    return decode_with_stb(bytes, path);
  }
  if (extension == ".tif" || extension == ".tiff") return decode_tiff(path);
  const std::vector<uint8_t> bytes = read_file(path);
  if (is_tiff(bytes)) return decode_tiff(path);
  return decode_with_stb(bytes, path);
}

void write_png(const std::filesystem::path& path, const Image& image) {
  VT_CHECK((image.channels == 1 || image.channels == 3) && image.height > 0 && image.width > 0 &&
               image.pixels.size() == static_cast<size_t>(image.height) * image.width * image.channels,
           "cannot write PNG ", path.string(), ": need a non-empty image of 1 or 3 channels, got ", image.height, "x",
           image.width, "x", image.channels, " with ", image.pixels.size(), " bytes");
  write_file_atomically(path.string(), [&](const std::string& temporary) {
    // stb_image_write (compiled into Debian's libstb) says only whether it worked.
    VT_CHECK(stbi_write_png(temporary.c_str(), image.width, image.height, image.channels, image.pixels.data(),
                            image.width * image.channels) != 0,
             "cannot write PNG ", temporary, " (missing directory, no permission or disk full?)");
  });
}

}  // namespace vesseltune::data
