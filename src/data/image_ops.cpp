#include "vesseltune/data/image_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "vesseltune/core/check.h"

namespace vesseltune::data {

Image flip_horizontal(const Image& image) {
  Image out(image.height, image.width, image.channels);
  const int c = image.channels;
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      std::memcpy(out.ptr(y, x), image.ptr(y, image.width - 1 - x), static_cast<size_t>(c));
    }
  }
  return out;
}

Image flip_vertical(const Image& image) {
  Image out(image.height, image.width, image.channels);
  const size_t row = static_cast<size_t>(image.width) * image.channels;
  for (int y = 0; y < image.height; ++y) {
    std::memcpy(out.ptr(y, 0), image.ptr(image.height - 1 - y, 0), row);
  }
  return out;
}

Image rotate90(const Image& image, int quarter_turns) {
  const int turns = ((quarter_turns % 4) + 4) % 4;
  if (turns == 0) return image;
  if (turns == 2) return flip_vertical(flip_horizontal(image));
  Image out(image.width, image.height, image.channels);
  const auto c = static_cast<size_t>(image.channels);
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      // Counter-clockwise: out(y, x) = in(x, W-1-y); clockwise (three turns): out(y, x) = in(H-1-x, y).
      const uint8_t* from = turns == 1 ? image.ptr(x, image.width - 1 - y) : image.ptr(image.height - 1 - x, y);
      std::memcpy(out.ptr(y, x), from, c);
    }
  }
  return out;
}

Image crop(const Image& image, int top, int left, int height, int width) {
  VT_CHECK(top >= 0 && left >= 0 && height > 0 && width > 0 && top + height <= image.height &&
               left + width <= image.width,
           "crop ", height, "x", width, " at (", top, ",", left, ") does not fit a ", image.height, "x", image.width,
           " image");
  Image out(height, width, image.channels);
  const size_t row = static_cast<size_t>(width) * image.channels;
  for (int y = 0; y < height; ++y) std::memcpy(out.ptr(y, 0), image.ptr(top + y, left), row);
  return out;
}

AffineMap rotation_about_centre(int height, int width, double degrees, double scale) {
  // Output→source is the inverse transform: rotate back and divide by the scale, about the centre.
  const double radians = degrees * M_PI / 180.0;
  const double cos_a = std::cos(radians) / scale, sin_a = std::sin(radians) / scale;
  const double cx = width / 2.0, cy = height / 2.0;
  AffineMap map;
  map.xx = cos_a;
  map.xy = -sin_a;
  map.yx = sin_a;
  map.yy = cos_a;
  // The map takes pixel-centre coordinates: source = R (p + 0.5 - c) + c.
  map.x0 = cx + cos_a * (0.5 - cx) - sin_a * (0.5 - cy);
  map.y0 = cy + sin_a * (0.5 - cx) + cos_a * (0.5 - cy);
  return map;
}

Image warp(const Image& image, const AffineMap& map, int out_height, int out_width, Interpolation interpolation) {
  Image out(out_height, out_width, image.channels);
  const int c = image.channels, w = image.width, h = image.height;
  for (int y = 0; y < out_height; ++y) {
    // Walk the row incrementally: source point of (x, y) is that of (0, y) plus x steps of (xx, yx).
    double sx = map.xy * y + map.x0, sy = map.yy * y + map.y0;
    for (int x = 0; x < out_width; ++x, sx += map.xx, sy += map.yx) {
      uint8_t* target = out.ptr(y, x);
      if (interpolation == Interpolation::nearest) {
        const int ix = static_cast<int>(std::floor(sx)), iy = static_cast<int>(std::floor(sy));
        if (ix >= 0 && iy >= 0 && ix < w && iy < h) std::memcpy(target, image.ptr(iy, ix), static_cast<size_t>(c));
        continue;
      }
      // Bilinear between the four pixel centres around (sx - 0.5, sy - 0.5); outside counts as 0.
      const double fx = sx - 0.5, fy = sy - 0.5;
      const int x0 = static_cast<int>(std::floor(fx)), y0 = static_cast<int>(std::floor(fy));
      if (x0 < -1 || y0 < -1 || x0 >= w || y0 >= h) continue;
      const double ax = fx - x0, ay = fy - y0;
      const double weights[4] = {(1 - ax) * (1 - ay), ax * (1 - ay), (1 - ax) * ay, ax * ay};
      if (x0 >= 0 && y0 >= 0 && x0 + 1 < w && y0 + 1 < h) {  // inside: no per-tap checks
        const uint8_t* top = image.ptr(y0, x0);
        const uint8_t* bottom = image.ptr(y0 + 1, x0);
        for (int ch = 0; ch < c; ++ch) {
          const double value = weights[0] * top[ch] + weights[1] * top[c + ch] + weights[2] * bottom[ch] +
                               weights[3] * bottom[c + ch];
          target[ch] = static_cast<uint8_t>(std::min(value + 0.5, 255.0));
        }
        continue;
      }
      const int xs[4] = {x0, x0 + 1, x0, x0 + 1}, ys[4] = {y0, y0, y0 + 1, y0 + 1};
      for (int ch = 0; ch < c; ++ch) {
        double value = 0;
        for (int k = 0; k < 4; ++k) {
          if (xs[k] >= 0 && ys[k] >= 0 && xs[k] < w && ys[k] < h) value += weights[k] * image.at(ys[k], xs[k], ch);
        }
        target[ch] = static_cast<uint8_t>(std::clamp(value + 0.5, 0.0, 255.0));
      }
    }
  }
  return out;
}

Image resize_nearest(const Image& image, int out_height, int out_width) {
  VT_CHECK(out_height > 0 && out_width > 0, "resize to ", out_height, "x", out_width);
  Image out(out_height, out_width, image.channels);
  std::vector<int> source_x(static_cast<size_t>(out_width));
  for (int x = 0; x < out_width; ++x) {
    source_x[x] = std::min(static_cast<int>(static_cast<int64_t>(x) * image.width / out_width), image.width - 1);
  }
  const auto c = static_cast<size_t>(image.channels);
  for (int y = 0; y < out_height; ++y) {
    const int sy = std::min(static_cast<int>(static_cast<int64_t>(y) * image.height / out_height), image.height - 1);
    for (int x = 0; x < out_width; ++x) std::memcpy(out.ptr(y, x), image.ptr(sy, source_x[x]), c);
  }
  return out;
}

}  // namespace vesseltune::data
