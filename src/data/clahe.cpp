#include "vesseltune/data/clahe.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <vector>

#include "vesseltune/core/check.h"

namespace vesseltune::data {

Image clahe_plane(const Image& plane, double clip_limit, int tiles) {
  VT_CHECK(plane.channels == 1, "CLAHE needs a one-channel plane, got ", plane.channels, " channels");
  VT_CHECK(tiles >= 1 && clip_limit > 0, "CLAHE: tiles ", tiles, " and clip limit ", clip_limit, " must be positive");
  const int tiles_y = std::min(tiles, plane.height), tiles_x = std::min(tiles, plane.width);
  const double tile_h = static_cast<double>(plane.height) / tiles_y, tile_w = static_cast<double>(plane.width) / tiles_x;
  // One lookup table per tile: the clipped, redistributed histogram's cumulative sum scaled to 0..255.
  std::vector<std::array<uint8_t, 256>> tables(static_cast<size_t>(tiles_y) * tiles_x);
  for (int ty = 0; ty < tiles_y; ++ty) {
    for (int tx = 0; tx < tiles_x; ++tx) {
      const int y_begin = static_cast<int>(ty * tile_h), y_end = static_cast<int>((ty + 1) * tile_h);
      const int x_begin = static_cast<int>(tx * tile_w), x_end = static_cast<int>((tx + 1) * tile_w);
      std::array<int64_t, 256> histogram{};
      for (int y = y_begin; y < y_end; ++y) {
        for (int x = x_begin; x < x_end; ++x) ++histogram[plane.at(y, x)];
      }
      const int64_t area = static_cast<int64_t>(y_end - y_begin) * (x_end - x_begin);
      const auto limit = std::max<int64_t>(1, static_cast<int64_t>(clip_limit * area / 256.0));
      int64_t excess = 0;
      for (int64_t& count : histogram) {
        if (count > limit) {
          excess += count - limit;
          count = limit;
        }
      }
      const int64_t share = excess / 256, rest = excess % 256;
      for (int v = 0; v < 256; ++v) histogram[v] += share + (v < rest ? 1 : 0);
      int64_t sum = 0;
      std::array<uint8_t, 256>& table = tables[static_cast<size_t>(ty) * tiles_x + tx];
      for (int v = 0; v < 256; ++v) {
        sum += histogram[v];
        table[v] = static_cast<uint8_t>(std::clamp<int64_t>(std::lround(255.0 * sum / area), 0, 255));
      }
    }
  }
  // Each pixel blends the tables of the four tiles whose centres surround it.
  Image out(plane.height, plane.width, 1);
  for (int y = 0; y < plane.height; ++y) {
    const double gy = (y + 0.5) / tile_h - 0.5;
    const int ty0 = std::clamp(static_cast<int>(std::floor(gy)), 0, tiles_y - 1), ty1 = std::min(ty0 + 1, tiles_y - 1);
    const double wy = std::clamp(gy - ty0, 0.0, 1.0);
    for (int x = 0; x < plane.width; ++x) {
      const double gx = (x + 0.5) / tile_w - 0.5;
      const int tx0 = std::clamp(static_cast<int>(std::floor(gx)), 0, tiles_x - 1),
                tx1 = std::min(tx0 + 1, tiles_x - 1);
      const double wx = std::clamp(gx - tx0, 0.0, 1.0);
      const uint8_t v = plane.at(y, x);
      const double top = (1 - wx) * tables[static_cast<size_t>(ty0) * tiles_x + tx0][v] +
                         wx * tables[static_cast<size_t>(ty0) * tiles_x + tx1][v];
      const double bottom = (1 - wx) * tables[static_cast<size_t>(ty1) * tiles_x + tx0][v] +
                            wx * tables[static_cast<size_t>(ty1) * tiles_x + tx1][v];
      out.at(y, x) = static_cast<uint8_t>(std::lround((1 - wy) * top + wy * bottom));
    }
  }
  return out;
}

Image clahe_rgb(const Image& image, double clip_limit, int tiles) {
  VT_CHECK(image.channels == 3, "CLAHE on RGB needs 3 channels, got ", image.channels);
  Image value(image.height, image.width, 1);
  for (size_t i = 0; i < value.pixels.size(); ++i) {
    value.pixels[i] = std::max({image.pixels[3 * i], image.pixels[3 * i + 1], image.pixels[3 * i + 2]});
  }
  const Image equalised = clahe_plane(value, clip_limit, tiles);
  Image out = image;
  for (size_t i = 0; i < value.pixels.size(); ++i) {
    if (value.pixels[i] == 0) continue;
    const double gain = static_cast<double>(equalised.pixels[i]) / value.pixels[i];
    for (int c = 0; c < 3; ++c) {
      out.pixels[3 * i + c] = static_cast<uint8_t>(std::min<long>(255, std::lround(image.pixels[3 * i + c] * gain)));
    }
  }
  return out;
}

}  // namespace vesseltune::data
