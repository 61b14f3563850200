// Tile mode's windows and blend weights against hand-worked cases: where two windows meet, their weights must sum
// to 1 pixel by pixel (a linear cross-fade), windows must cover the axis, and image borders get full weight.
#include <gtest/gtest.h>

#include "vesseltune/core/check.h"
#include "vesseltune/eval/segmenter.h"

namespace vesseltune::eval {
namespace {

std::vector<float> values(const at::Tensor& t) { return {t.data_ptr<float>(), t.data_ptr<float>() + t.numel()}; }

TEST(Tiling, WindowStartsCoverTheAxisEvenly) {
  EXPECT_EQ(window_starts(10, 6, 2), (std::vector<int>{0, 4}));  // ceil((10 - 2) / (6 - 2)) = 2 windows
  EXPECT_EQ(window_starts(11, 6, 2), (std::vector<int>{0, 3, 5}));  // 3 windows: starts 0, 2.5 → 3, 5
  EXPECT_EQ(window_starts(6, 6, 2), (std::vector<int>{0}));
  EXPECT_EQ(window_starts(4, 6, 2), (std::vector<int>{0}));  // shorter than a window: the whole axis
  // HRF's width: ceil((3504 - 256) / (1024 - 256)) = 5 windows, (3504 - 1024) / 4 = 620 apart.
  EXPECT_EQ(window_starts(3504, 1024, 256), (std::vector<int>{0, 620, 1240, 1860, 2480}));
  EXPECT_THROW(window_starts(10, 6, 6), Error);
}

TEST(Tiling, WeightsCrossFadeLinearlyAndSumToOne) {
  // Axis 10, windows [0, 6) and [4, 10), overlap 2: ramps (i + 0.5) / 2 = 0.25, 0.75 over pixels 4 and 5.
  EXPECT_EQ(values(window_weights(0, 6, 10, 2)), (std::vector<float>{1, 1, 1, 1, 0.75f, 0.25f}));
  EXPECT_EQ(values(window_weights(4, 6, 10, 2)), (std::vector<float>{0.25f, 0.75f, 1, 1, 1, 1}));
  EXPECT_EQ(values(window_weights(0, 4, 4, 2)), (std::vector<float>{1, 1, 1, 1}));  // alone: no ramp
  // Three windows over 11 pixels: every pixel's weights sum to > 0, and exactly 1 where only two meet over the
  // overlap's width.
  at::Tensor total = at::zeros({11});
  for (const int start : window_starts(11, 6, 2)) total.slice(0, start, start + 6) += window_weights(start, 6, 11, 2);
  EXPECT_GT(total.min().item<float>(), 0.0f);
  EXPECT_FLOAT_EQ(total[0].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(total[10].item<float>(), 1.0f);
}

}  // namespace
}  // namespace vesseltune::eval
