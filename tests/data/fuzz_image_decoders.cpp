// libFuzzer harness for vesseltune-pack's image decoders (data/codec.h): the first byte picks a file extension, the
// rest is the file. Any input must decode to a consistent image or throw vesseltune::Error, never crash, hang or
// read out of bounds (run under AddressSanitizer and UBSan by tests/support/fuzz.sh). stb_image is compiled in here
// so that the sanitizers and the fuzzer's coverage reach into it.
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image.h>
#include <stb_image_write.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

#include "vesseltune/core/check.h"
#include "vesseltune/data/codec.h"

namespace {

const char* const kExtensions[] = {".tif", ".png", ".gif", ".jpg", ".ppm", ".pgm", ".bmp", ".ppm.gz"};

const std::filesystem::path& work_dir() {
  static const std::filesystem::path dir = [] {
    const auto path = std::filesystem::temp_directory_path() / ("vt_fuzz_decoders_" + std::to_string(::getpid()));
    std::filesystem::create_directories(path);
    return path;
  }();
  return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto path = work_dir() / (std::string("input") + kExtensions[data[0] % std::size(kExtensions)]);
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    const vesseltune::data::Image image = vesseltune::data::decode_image(path);
    const size_t expected = static_cast<size_t>(image.height) * image.width * image.channels;
    if (image.height <= 0 || image.width <= 0 || image.pixels.size() != expected) __builtin_trap();
  } catch (const vesseltune::Error&) {
  }
  return 0;
}
