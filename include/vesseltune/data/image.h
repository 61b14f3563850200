#pragma once
// An 8-bit image in memory: rows of interleaved channels (H×W×C), the layout of the shards, of the codecs
// and of the model-input code. Masks and FOVs are one-channel images holding 0 or 1.

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vesseltune::data {

struct Image {
  int height = 0;
  int width = 0;
  int channels = 0;
  std::vector<uint8_t> pixels;  // height * width * channels bytes, row-major

  Image() = default;
  Image(int height, int width, int channels, uint8_t fill = 0)
      : height(height), width(width), channels(channels),
        pixels(static_cast<size_t>(height) * width * channels, fill) {}

  bool empty() const { return pixels.empty(); }
  size_t index(int y, int x, int c = 0) const { return (static_cast<size_t>(y) * width + x) * channels + c; }
  uint8_t& at(int y, int x, int c = 0) { return pixels[index(y, x, c)]; }
  uint8_t at(int y, int x, int c = 0) const { return pixels[index(y, x, c)]; }
  uint8_t* ptr(int y, int x = 0) { return pixels.data() + index(y, x); }
  const uint8_t* ptr(int y, int x = 0) const { return pixels.data() + index(y, x); }
};

}  // namespace vesseltune::data
