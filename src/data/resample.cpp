#include "vesseltune/data/resample.h"

#include <algorithm>
#include <cmath>
#include <cstring>
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

// SUM[i] += LINES[t * STRIDE + i] * WEIGHTS[t] for t < COUNT and i < LANES (one weight per image row), then
// each sum to 8 bits: floor(sum / 2^22) clipped to 0..255 (with kHalf added first, round to nearest). Built
// for AVX2 and the baseline, picked at load time, like the block below: the two passes are most of the
// loader's CPU time for large fundus images.
__attribute__((target_clones("avx2", "default"))) void filter_lines(const uint8_t* lines, size_t stride,
                                                                      const int32_t* weights, int count,
                                                                      size_t lanes, int32_t* sum, uint8_t* out) {
  std::fill(sum, sum + lanes, kHalf);
  for (int t = 0; t < count; ++t) {
    const uint8_t* line = lines + static_cast<size_t>(t) * stride;
    const int32_t w = weights[t];
    for (size_t i = 0; i < lanes; ++i) sum[i] += line[i] * w;
  }
  for (size_t i = 0; i < lanes; ++i) out[i] = static_cast<uint8_t>(std::clamp(sum[i] >> kPrecisionBits, 0, 255));
}

// The horizontal pass over kBlockRows rows from TOP: the block is first laid out column by column and
// widened to int32 (block[x][row][channel]), so that each tap reads the block's rows × channels as C whole
// vectors of kBlockRows lanes (GCC vector extensions: AVX2 or SSE2 instructions by clone).
constexpr int kBlockRows = 8;
using Sums8 = int32_t __attribute__((vector_size(32)));

// One horizontal job: the taps of one output width and the image its filtered rows go to.
struct RowJob {
  Taps taps;
  Image out;
};

template <int C>
[[gnu::always_inline]] inline void filter_row_block(const Image& in, int top, int32_t* block, RowJob* jobs,
                                                    size_t job_count) {
  constexpr int kLanes = kBlockRows * C;
  const int rows = std::min(kBlockRows, in.height - top);
  const uint8_t* row[kBlockRows];
  for (int r = 0; r < kBlockRows; ++r) row[r] = in.ptr(top + std::min(r, rows - 1));  // a short block repeats its last row
  for (int x = 0; x < in.width; ++x) {
    int32_t* column = block + static_cast<size_t>(x) * kLanes;
    for (int r = 0; r < kBlockRows; ++r) {
      for (int c = 0; c < C; ++c) column[r * C + c] = row[r][static_cast<size_t>(x) * C + c];
    }
  }
  for (size_t j = 0; j < job_count; ++j) {  // every output width reads the same laid-out block
    const Taps& taps = jobs[j].taps;
    Image& out = jobs[j].out;
    for (int o = 0; o < out.width; ++o) {
      Sums8 sum[C];
      for (int c = 0; c < C; ++c) sum[c] = Sums8{} + kHalf;
      const int32_t* first = block + static_cast<size_t>(taps.first[o]) * kLanes;
      const int32_t* weights = &taps.weights[static_cast<size_t>(o) * taps.stride];
      for (int t = 0; t < taps.count[o]; ++t) {
        for (int c = 0; c < C; ++c) {
          Sums8 pixels;
          std::memcpy(&pixels, first + t * kLanes + c * kBlockRows, sizeof pixels);
          sum[c] += pixels * weights[t];
        }
      }
      // sum[c] lane l is value l of the block's run: row (c * 8 + l) / C, channel (c * 8 + l) % C.
      alignas(32) int32_t values[kLanes];
      for (int c = 0; c < C; ++c) {
        Sums8 v = sum[c] >> kPrecisionBits;
        v = v < 0 ? Sums8{} : v;
        v = v > 255 ? Sums8{} + 255 : v;
        std::memcpy(values + c * kBlockRows, &v, sizeof v);
      }
      for (int r = 0; r < rows; ++r) {
        uint8_t* target = out.ptr(top + r, o);
        for (int c = 0; c < C; ++c) target[c] = static_cast<uint8_t>(values[r * C + c]);
      }
    }
  }
}

__attribute__((target_clones("avx2", "default"))) void filter_row_block_rgb(const Image& in, int top, int32_t* block,
                                                                              RowJob* jobs, size_t job_count) {
  filter_row_block<3>(in, top, block, jobs, job_count);
}

__attribute__((target_clones("avx2", "default"))) void filter_row_block_grey(const Image& in, int top, int32_t* block,
                                                                               RowJob* jobs, size_t job_count) {
  filter_row_block<1>(in, top, block, jobs, job_count);
}

// Along each row, for every job: OUT[y][o] = clip(sum over t of IN[y][first[o] + t] * weight[o][t]), per
// channel. Each block of rows is laid out once for all of the jobs.
void resample_rows(const Image& in, std::vector<RowJob>& jobs) {
  std::vector<int32_t> block(static_cast<size_t>(in.width) * kBlockRows * in.channels);
  for (int top = 0; top < in.height; top += kBlockRows) {
    if (in.channels == 3) {
      filter_row_block_rgb(in, top, block.data(), jobs.data(), jobs.size());
    } else {
      filter_row_block_grey(in, top, block.data(), jobs.data(), jobs.size());
    }
  }
}

// Down the columns: OUT[o] = clip(sum over t of IN[first[o] + t] * weight[o][t]), whole rows at a time.
Image resample_columns(const Image& in, int out_height, const Taps& taps) {
  Image out(out_height, in.width, in.channels);
  const size_t row_bytes = static_cast<size_t>(in.width) * in.channels;
  std::vector<int32_t> sum(row_bytes);
  for (int o = 0; o < out_height; ++o) {
    filter_lines(in.ptr(taps.first[o]), row_bytes, &taps.weights[static_cast<size_t>(o) * taps.stride],
                 taps.count[o], row_bytes, sum.data(), out.ptr(o));
  }
  return out;
}

}  // namespace

std::vector<Image> resize_bicubic(const Image& image, const std::vector<std::pair<int, int>>& sizes) {
  VT_CHECK(!image.empty(), "resize of an empty image");
  VT_CHECK(image.channels == 1 || image.channels == 3, "resize_bicubic takes 1 or 3 channels, got ", image.channels);
  // Pillow filters all rows horizontally (it skips rows the vertical pass never reads, which only saves time).
  std::vector<RowJob> jobs;
  std::vector<int> job_of(sizes.size(), -1);  // the horizontal job of each size, -1 when its width is the image's
  for (size_t i = 0; i < sizes.size(); ++i) {
    const auto [out_height, out_width] = sizes[i];
    VT_CHECK(out_height > 0 && out_width > 0, "resize to ", out_height, "x", out_width);
    if (out_width == image.width) continue;
    for (size_t j = 0; j < jobs.size() && job_of[i] < 0; ++j) {
      if (jobs[j].out.width == out_width) job_of[i] = static_cast<int>(j);
    }
    if (job_of[i] >= 0) continue;
    job_of[i] = static_cast<int>(jobs.size());
    jobs.push_back({bicubic_taps(image.width, out_width), Image(image.height, out_width, image.channels)});
  }
  if (!jobs.empty()) resample_rows(image, jobs);
  std::vector<Image> out;
  out.reserve(sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    const Image& rows_done = job_of[i] < 0 ? image : jobs[static_cast<size_t>(job_of[i])].out;
    const int out_height = sizes[i].first;
    out.push_back(out_height != image.height
                      ? resample_columns(rows_done, out_height, bicubic_taps(image.height, out_height))
                      : rows_done);
  }
  return out;
}

Image resize_bicubic(const Image& image, int out_height, int out_width) {
  return std::move(resize_bicubic(image, {{out_height, out_width}})[0]);
}

}  // namespace vesseltune::data
