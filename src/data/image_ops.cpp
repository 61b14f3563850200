#include "vesseltune/data/image_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "vesseltune/core/check.h"

namespace vesseltune::data {

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

AffineMap compose(const AffineMap& outer, const AffineMap& inner) {
  AffineMap m;
  m.xx = outer.xx * inner.xx + outer.xy * inner.yx;
  m.xy = outer.xx * inner.xy + outer.xy * inner.yy;
  m.x0 = outer.xx * inner.x0 + outer.xy * inner.y0 + outer.x0;
  m.yx = outer.yx * inner.xx + outer.yy * inner.yx;
  m.yy = outer.yx * inner.xy + outer.yy * inner.yy;
  m.y0 = outer.yx * inner.x0 + outer.yy * inner.y0 + outer.y0;
  return m;
}

AffineMap rotation_about_centre(int height, int width, double degrees, double scale) {
  // Output→source is the inverse transform: rotate back and divide by the scale, about the centre c:
  // source = R (p - c) + c.
  const double radians = degrees * M_PI / 180.0;
  const double cos_a = std::cos(radians) / scale, sin_a = std::sin(radians) / scale;
  const double cx = width / 2.0, cy = height / 2.0;
  AffineMap map;
  map.xx = cos_a;
  map.xy = -sin_a;
  map.yx = sin_a;
  map.yy = cos_a;
  map.x0 = cx - (cos_a * cx - sin_a * cy);
  map.y0 = cy - (sin_a * cx + cos_a * cy);
  return map;
}

AffineMap resized_map(const AffineMap& map, int height, int width, int out_height, int out_width) {
  // The resize is u_out = D u with D = diag(out_width / width, out_height / height): the motion seen there is
  // D MAP D^-1.
  AffineMap to_out, from_out;
  to_out.xx = static_cast<double>(out_width) / width;
  to_out.yy = static_cast<double>(out_height) / height;
  from_out.xx = 1.0 / to_out.xx;
  from_out.yy = 1.0 / to_out.yy;
  return compose(to_out, compose(map, from_out));
}

namespace {

// Coordinates in 16.16 fixed point, stepped along a row: per step the error is under 2^-17 pixel.
constexpr int kFraction = 16;
constexpr double kOne = 1 << kFraction;

inline int64_t fixed(double v) { return std::llround(v * kOne); }

template <int C>
void warp_rows(const Image& image, const AffineMap& map, Image& out, Interpolation interpolation) {
  const int w = image.width, h = image.height;
  const int64_t step_x = fixed(map.xx), step_y = fixed(map.yx);
  // Nearest reads the pixel containing the point; bilinear blends the four pixel centres around it, so it
  // works in coordinates shifted by half a pixel (pixel centres on the integers).
  const double shift = interpolation == Interpolation::bilinear ? 0.5 : 0.0;
  for (int y = 0; y < out.height; ++y) {
    int64_t sx = fixed(map.xx * 0.5 + map.xy * (y + 0.5) + map.x0 - shift);
    int64_t sy = fixed(map.yx * 0.5 + map.yy * (y + 0.5) + map.y0 - shift);
    uint8_t* target = out.ptr(y);
    for (int x = 0; x < out.width; ++x, sx += step_x, sy += step_y, target += C) {
      const int64_t ix = sx >> kFraction, iy = sy >> kFraction;  // floor (arithmetic shift)
      if (interpolation == Interpolation::nearest) {
        if (ix >= 0 && iy >= 0 && ix < w && iy < h) {
          const uint8_t* from = image.ptr(static_cast<int>(iy), static_cast<int>(ix));
          for (int c = 0; c < C; ++c) target[c] = from[c];
        }
        continue;
      }
      if (ix < -1 || iy < -1 || ix >= w || iy >= h) continue;
      // Weights in 1/256: a fraction within 1/512 of a pixel centre gives that pixel all of the weight.
      const int32_t ax = static_cast<int32_t>(((sx & 0xffff) + 128) >> 8), ay = static_cast<int32_t>(((sy & 0xffff) + 128) >> 8);
      const int32_t weights[4] = {(256 - ax) * (256 - ay), ax * (256 - ay), (256 - ax) * ay, ax * ay};
      const int x0 = static_cast<int>(ix), y0 = static_cast<int>(iy);
      if (x0 >= 0 && y0 >= 0 && x0 + 1 < w && y0 + 1 < h) {  // inside: no per-tap checks
        const uint8_t* top = image.ptr(y0, x0);
        const uint8_t* bottom = image.ptr(y0 + 1, x0);
        for (int c = 0; c < C; ++c) {
          const int32_t v = weights[0] * top[c] + weights[1] * top[C + c] + weights[2] * bottom[c] + weights[3] * bottom[C + c];
          target[c] = static_cast<uint8_t>((v + (1 << 15)) >> 16);
        }
        continue;
      }
      const int xs[4] = {x0, x0 + 1, x0, x0 + 1}, ys[4] = {y0, y0, y0 + 1, y0 + 1};
      for (int c = 0; c < C; ++c) {
        int32_t v = 0;
        for (int k = 0; k < 4; ++k) {
          if (xs[k] >= 0 && ys[k] >= 0 && xs[k] < w && ys[k] < h) v += weights[k] * image.at(ys[k], xs[k], c);
        }
        target[c] = static_cast<uint8_t>((v + (1 << 15)) >> 16);
      }
    }
  }
}

}  // namespace

Image warp(const Image& image, const AffineMap& map, int out_height, int out_width, Interpolation interpolation) {
  VT_CHECK(image.channels == 1 || image.channels == 3, "warp takes 1 or 3 channels, got ", image.channels);
  Image out(out_height, out_width, image.channels);
  if (image.channels == 3) {
    warp_rows<3>(image, map, out, interpolation);
  } else {
    warp_rows<1>(image, map, out, interpolation);
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
