#include "vesseltune/data/resample.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "vesseltune/core/check.h"

namespace vesseltune::data {

namespace {

// Pillow's fixed point for 8-bit images: 8 bits of pixel and 2 bits of headroom (the cubic's negative
// lobes let partial sums exceed 255 × 1) leave 22 fractional bits in an int32 accumulator.
constexpr int kPrecisionBits = 32 - 8 - 2;
constexpr int32_t kHalf = 1 << (kPrecisionBits - 1);  // accumulators start here: rounds to nearest

// Keys' cubic convolution kernel with a = -0.5, support [-2, 2].
double bicubic(double x) {
  constexpr double a = -0.5;
  x = std::abs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

// The filter along one axis: output position o reads inputs first[o] .. first[o] + count[o] - 1 with the
// fixed-point weights weights[o * stride ...].
struct Taps {
  int stride = 0;
  std::vector<int> first, count;
  std::vector<int32_t> weights;
};

// Pillow's precompute_coeffs + normalize_coeffs_8bpc, with the same double arithmetic (the same
// expressions in the same order) so that the rounded weights are bit-identical.
Taps bicubic_taps(int in_size, int out_size) {
  const double scale = static_cast<double>(in_size) / out_size;
  const double filter_scale = std::max(scale, 1.0);  // shrinking widens the kernel: antialiasing
  const double support = 2.0 * filter_scale;
  const double inverse_filter_scale = 1.0 / filter_scale;
  Taps taps;
  taps.stride = static_cast<int>(std::ceil(support)) * 2 + 1;
  taps.first.resize(static_cast<size_t>(out_size));
  taps.count.resize(static_cast<size_t>(out_size));
  taps.weights.assign(static_cast<size_t>(out_size) * taps.stride, 0);
  std::vector<double> w(static_cast<size_t>(taps.stride));
  for (int o = 0; o < out_size; ++o) {
    const double center = (o + 0.5) * scale;
    // Pillow truncates (x + 0.5) toward zero to round the window's ends, then clamps them to the image.
    const int lo = std::max(static_cast<int>(center - support + 0.5), 0);
    const int hi = std::min(static_cast<int>(center + support + 0.5), in_size);
    const int n = hi - lo;
    double sum = 0.0;
    for (int t = 0; t < n; ++t) {
      w[t] = bicubic((t + lo - center + 0.5) * inverse_filter_scale);
      sum += w[t];
    }
    int32_t* fixed = &taps.weights[static_cast<size_t>(o) * taps.stride];
    for (int t = 0; t < n; ++t) {
      const double normalised = sum != 0.0 ? w[t] / sum : w[t];
      const double scaled = normalised * (1 << kPrecisionBits);
      fixed[t] = static_cast<int32_t>(normalised < 0 ? scaled - 0.5 : scaled + 0.5);  // round half away
    }
    taps.first[o] = lo;
    taps.count[o] = n;
  }
  return taps;
}

// Fixed-point sum → 8 bits: floor(sum / 2^22) clipped to 0..255 (with kHalf added, round to nearest).
inline uint8_t clip8(int32_t sum) {
  if (sum < 0) return 0;
  const int32_t value = sum >> kPrecisionBits;
  return static_cast<uint8_t>(value > 255 ? 255 : value);
}

// Along each row: OUT[y][o] = clip(sum over t of IN[y][first[o] + t] * weight[o][t]), per channel.
template <int C>
Image resample_rows(const Image& in, int out_width, const Taps& taps) {
  Image out(in.height, out_width, C);
  for (int y = 0; y < in.height; ++y) {
    const uint8_t* row = in.ptr(y);
    uint8_t* target = out.ptr(y);
    for (int o = 0; o < out_width; ++o) {
      const int32_t* weight = &taps.weights[static_cast<size_t>(o) * taps.stride];
      const uint8_t* pixel = row + static_cast<size_t>(taps.first[o]) * C;
      const int count = taps.count[o];
      int32_t sum[C];
      for (int c = 0; c < C; ++c) sum[c] = kHalf;
      for (int t = 0; t < count; ++t, pixel += C) {
        const int32_t w = weight[t];
        for (int c = 0; c < C; ++c) sum[c] += pixel[c] * w;
      }
      for (int c = 0; c < C; ++c) target[o * C + c] = clip8(sum[c]);
    }
  }
  return out;
}

// Down the columns: OUT[o] = clip(sum over t of IN[first[o] + t] * weight[o][t]), whole rows at a time so
// that the inner loop runs over contiguous bytes with one weight (it vectorises).
Image resample_columns(const Image& in, int out_height, const Taps& taps) {
  Image out(out_height, in.width, in.channels);
  const size_t row_bytes = static_cast<size_t>(in.width) * in.channels;
  std::vector<int32_t> sum(row_bytes);
  for (int o = 0; o < out_height; ++o) {
    std::fill(sum.begin(), sum.end(), kHalf);
    const int32_t* weight = &taps.weights[static_cast<size_t>(o) * taps.stride];
    for (int t = 0; t < taps.count[o]; ++t) {
      const uint8_t* row = in.ptr(taps.first[o] + t);
      const int32_t w = weight[t];
      for (size_t i = 0; i < row_bytes; ++i) sum[i] += row[i] * w;
    }
    uint8_t* target = out.ptr(o);
    for (size_t i = 0; i < row_bytes; ++i) target[i] = clip8(sum[i]);
  }
  return out;
}

}  // namespace

Image resize_bicubic(const Image& image, int out_height, int out_width) {
  VT_CHECK(out_height > 0 && out_width > 0, "resize to ", out_height, "x", out_width);
  VT_CHECK(!image.empty(), "resize of an empty image");
  VT_CHECK(image.channels == 1 || image.channels == 3, "resize_bicubic takes 1 or 3 channels, got ", image.channels);
  // Pillow filters all rows horizontally (it skips rows the vertical pass never reads, which only saves time).
  Image rows_done;
  const Image* source = &image;
  if (out_width != image.width) {
    const Taps taps = bicubic_taps(image.width, out_width);
    rows_done = image.channels == 3 ? resample_rows<3>(image, out_width, taps) : resample_rows<1>(image, out_width, taps);
    source = &rows_done;
  }
  if (out_height != image.height) return resample_columns(*source, out_height, bicubic_taps(image.height, out_height));
  return *source;
}

}  // namespace vesseltune::data
