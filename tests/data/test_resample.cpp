// resize_bicubic against Pillow's Image.resize(size, BICUBIC): the references in fixtures/resample were
// written by tests/data/make_resample_fixtures.py with Debian's python3-pil (Pillow 9.4).

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "vesseltune/data/codec.h"
#include "vesseltune/data/resample.h"

namespace vesseltune::data {
namespace {

namespace fs = std::filesystem;
const fs::path kFixtures = VT_RESAMPLE_FIXTURES;

// make_resample_fixtures.py's pattern(): fast-varying values with hard 0 and 255 patches.
Image pattern(int height, int width) {
  Image image(height, width, 3);
  for (int64_t y = 0; y < height; ++y) {
    for (int64_t x = 0; x < width; ++x) {
      for (int64_t c = 0; c < 3; ++c) {
        uint8_t v = static_cast<uint8_t>((x * x * 3 + y * y * 5 + x * y + c * 85) & 255);
        if ((x / 11 + y / 3) % 5 == 0) {
          v = 0;
        } else if ((x / 7 + y / 5) % 4 == 0) {
          v = 255;
        }
        image.at(static_cast<int>(y), static_cast<int>(x), static_cast<int>(c)) = v;
      }
    }
  }
  return image;
}

TEST(Resample, MatchesPillowBicubicWithinOneLevel) {
  std::ifstream cases(kFixtures / "cases.txt");
  ASSERT_TRUE(cases) << "missing " << kFixtures / "cases.txt";
  std::string line;
  int checked = 0;
  while (std::getline(cases, line)) {
    std::istringstream fields(line);
    std::string input, reference;
    int out_height = 0, out_width = 0, row_step = 0;
    ASSERT_TRUE(fields >> input >> out_height >> out_width >> row_step >> reference) << line;
    SCOPED_TRACE(line);
    Image source;
    if (input.rfind("pattern:", 0) == 0) {
      int h = 0, w = 0;
      ASSERT_EQ(std::sscanf(input.c_str(), "pattern:%dx%d", &h, &w), 2);
      source = pattern(h, w);
    } else {
      source = decode_image(kFixtures / input);
    }
    const Image ours = resize_bicubic(source, out_height, out_width);
    const Image pillow = decode_image(kFixtures / reference);
    ASSERT_EQ(ours.height, out_height);
    ASSERT_EQ(ours.width, out_width);
    ASSERT_EQ(ours.channels, source.channels);
    ASSERT_EQ(pillow.height, (out_height + row_step - 1) / row_step);
    ASSERT_EQ(pillow.width, out_width);
    ASSERT_EQ(pillow.channels, ours.channels);
    int64_t off_by_one = 0, total = 0;
    for (int r = 0; r < pillow.height; ++r) {
      for (int x = 0; x < out_width; ++x) {
        for (int c = 0; c < ours.channels; ++c) {
          const int difference = std::abs(ours.at(r * row_step, x, c) - pillow.at(r, x, c));
          ASSERT_LE(difference, 1) << "row " << r * row_step << " column " << x << " channel " << c;
          off_by_one += difference;
          ++total;
        }
      }
    }
    // Same arithmetic as Pillow, so rounding differences should be rare exceptions, not a pattern.
    EXPECT_LE(off_by_one, total / 1000) << off_by_one << " of " << total << " values differ by one";
    ++checked;
  }
  EXPECT_EQ(checked, 15);
}

TEST(Resample, SeveralSizesAtOnceEqualOneCallEach) {
  // Shared horizontal jobs (two sizes with one width), a size of the image's own width and an upscale.
  const Image image = pattern(37, 53);
  const std::vector<std::pair<int, int>> sizes = {{20, 30}, {11, 30}, {15, 53}, {37, 53}, {70, 90}, {9, 7}};
  const std::vector<Image> together = resize_bicubic(image, sizes);
  ASSERT_EQ(together.size(), sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    EXPECT_EQ(together[i].pixels, resize_bicubic(image, sizes[i].first, sizes[i].second).pixels) << i;
  }
}

TEST(Resample, SameSizeIsACopyAndConstantsStayConstant) {
  const Image image = pattern(9, 13);
  EXPECT_EQ(resize_bicubic(image, 9, 13).pixels, image.pixels);
  const Image grey(7, 9, 3, 77);
  for (uint8_t v : resize_bicubic(grey, 20, 30).pixels) ASSERT_EQ(v, 77);
  for (uint8_t v : resize_bicubic(grey, 3, 4).pixels) ASSERT_EQ(v, 77);
}

TEST(Resample, UpscalingByTwoUsesTheCubicWeights) {
  // One row 0 0 0 255 0 0 0 widened to 14: output 7 has its centre at 3.75 in input pixel units and input
  // 3 at 3.5, so input 3 weighs Keys' cubic (a = -0.5) at 0.25: 1.5·0.25³ - 2.5·0.25² + 1 = 0.8671875 (the
  // window's four weights already sum to 1): 255 · 0.8671875 = 221.1.
  Image row(1, 7, 1, 0);
  row.at(0, 3) = 255;
  const Image wide = resize_bicubic(row, 1, 14);
  EXPECT_EQ(wide.at(0, 7), 221);
  EXPECT_EQ(wide.at(0, 6), 221);  // mirror image: centre 3.25
  // Output 5 (centre 2.75) sees input 3 at distance 0.75: -0.5·(0.75³ - 5·0.75² + 8·0.75 - 4) = 0.2265625 → 57.8;
  // output 8 the same from the other side.
  EXPECT_EQ(wide.at(0, 5), 58);
  EXPECT_EQ(wide.at(0, 8), 58);
  // Output 4 (centre 2.25) sees input 3 at 1.25: -0.5·(1.25³ - 5·1.25² + 8·1.25 - 4) = -0.0703125 → clipped to 0.
  EXPECT_EQ(wide.at(0, 4), 0);
}

}  // namespace
}  // namespace vesseltune::data
