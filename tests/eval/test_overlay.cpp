// Overlay colours pixel by pixel, the legend's colours, and the contact sheet's layout and cells.
#include <gtest/gtest.h>

#include <array>

#include "vesseltune/core/check.h"
#include "vesseltune/eval/overlay.h"

namespace vesseltune::eval {
namespace {

using Rgb = std::array<uint8_t, 3>;

Rgb pixel(const data::Image& image, int y, int x) { return {image.at(y, x, 0), image.at(y, x, 1), image.at(y, x, 2)}; }

int count_colour(const data::Image& image, int top, int bottom, int left, int right, const Rgb& colour) {
  int count = 0;
  for (int y = top; y < bottom; ++y) {
    for (int x = left; x < right; ++x) count += pixel(image, y, x) == colour;
  }
  return count;
}

at::Tensor mask(std::initializer_list<uint8_t> values) {
  return at::tensor(std::vector<uint8_t>(values), at::kByte).reshape({2, 4});
}

TEST(Overlay, ColoursEachClassAndDimsOutsideTheFov) {
  data::Image image(2, 4, 3, 100);
  image.at(0, 3, 0) = 200;  // a TN pixel of another colour, to see the image through
  // Columns: TP, FP, FN, TN. Row 0 inside the FOV, row 1 outside.
  const at::Tensor predicted = mask({1, 1, 0, 0, 1, 1, 0, 0});
  const at::Tensor truth = mask({1, 0, 1, 0, 1, 0, 1, 0});
  const at::Tensor fov = mask({1, 1, 1, 1, 0, 0, 0, 0});
  const data::Image out = render_overlay(image, predicted, truth, fov);
  ASSERT_EQ(out.channels, 3);
  ASSERT_EQ(out.width, 4);
  ASSERT_GT(out.height, 2);
  EXPECT_EQ(pixel(out, 0, 0), (Rgb{0, 255, 0}));
  EXPECT_EQ(pixel(out, 0, 1), (Rgb{255, 0, 0}));
  EXPECT_EQ(pixel(out, 0, 2), (Rgb{0, 0, 255}));
  EXPECT_EQ(pixel(out, 0, 3), (Rgb{200, 100, 100}));
  EXPECT_EQ(pixel(out, 1, 0), (Rgb{0, 127, 0}));  // outside the FOV: half brightness
  EXPECT_EQ(pixel(out, 1, 1), (Rgb{127, 0, 0}));
  EXPECT_EQ(pixel(out, 1, 2), (Rgb{0, 0, 127}));
  EXPECT_EQ(pixel(out, 1, 3), (Rgb{50, 50, 50}));
}

TEST(Overlay, LegendShowsTheThreeColoursAndText) {
  const int height = 40, width = 400;
  data::Image image(height, width, 3, 0);
  const at::Tensor empty = at::zeros({height, width}, at::kByte);
  const data::Image out = render_overlay(image, empty, empty, at::ones({height, width}, at::kByte));
  ASSERT_GT(out.height, height + 20);
  for (const Rgb& colour : {Rgb{0, 255, 0}, Rgb{255, 0, 0}, Rgb{0, 0, 255}, Rgb{255, 255, 255}}) {
    EXPECT_GT(count_colour(out, height, out.height, 0, width, colour), 10)
        << int(colour[0]) << "," << int(colour[1]) << "," << int(colour[2]);
  }
  // The image part holds no legend.
  EXPECT_EQ(count_colour(out, 0, height, 0, width, Rgb{0, 0, 0}), height * width);
}

TEST(Overlay, ANarrowImageGetsTheShortLegendUncut) {
  // 256 pixels: the worded legend ("red: background called vessel (false positive)") would run past the edge.
  const int height = 16, width = 256;
  data::Image image(height, width, 3, 0);
  const at::Tensor empty = at::zeros({height, width}, at::kByte);
  const data::Image out = render_overlay(image, empty, empty, at::ones({height, width}, at::kByte));
  EXPECT_GT(count_colour(out, height, out.height, 0, width, Rgb{255, 255, 255}), 10);
  EXPECT_EQ(count_colour(out, height, out.height, width - 40, width, Rgb{255, 255, 255}), 0) << "the text is cut";
}

TEST(Overlay, RejectsMismatchedMasks) {
  data::Image image(2, 4, 3);
  const at::Tensor good = at::zeros({2, 4}, at::kByte);
  EXPECT_THROW(render_overlay(image, at::zeros({3, 4}, at::kByte), good, good), Error);
  EXPECT_THROW(render_overlay(data::Image(2, 4, 1), good, good, good), Error);
}

TEST(ContactSheet, LayoutAndCells) {
  // Constant images, so the resized cell is the same constant. Cell width 8: 16x16 → 8x8, 8x16 → 4x8,
  // 16x8 → 16x8; cells are 16 + 14 (caption) tall, 4 apart: 2 columns x 2 rows → 28 x 72.
  std::vector<SheetEntry> entries = {{data::Image(16, 16, 1, 200), "WWWWWWWWWWWW"},
                                     {data::Image(8, 16, 3, 0), "b"},
                                     {data::Image(16, 8, 3, 0), "c"}};
  for (size_t i = 0; i < entries[1].image.pixels.size(); i += 3) {
    entries[1].image.pixels[i] = 10, entries[1].image.pixels[i + 1] = 20, entries[1].image.pixels[i + 2] = 30;
    entries[2].image.pixels[i] = 90, entries[2].image.pixels[i + 2] = 90;
  }
  const data::Image sheet = contact_sheet(entries, 2, 8);
  ASSERT_EQ(sheet.width, 4 + 2 * (8 + 4));
  ASSERT_EQ(sheet.height, 4 + 2 * (16 + 14 + 4));
  // Entry 0 at (4, 4), 8x8 of grey 200; entry 1 at (4, 16), 4x8 of (10, 20, 30); entry 2 at (38, 4), 16x8 of
  // (90, 0, 90). (Rows, columns.)
  EXPECT_EQ(count_colour(sheet, 4, 12, 4, 12, Rgb{200, 200, 200}), 64);
  EXPECT_EQ(count_colour(sheet, 4, 8, 16, 24, Rgb{10, 20, 30}), 32);
  EXPECT_EQ(count_colour(sheet, 8, 20, 16, 24, Rgb{0, 0, 0}), 12 * 8);  // below entry 1's image: background
  EXPECT_EQ(count_colour(sheet, 38, 54, 4, 12, Rgb{90, 0, 90}), 16 * 8);
  // Captions sit under the tallest image (rows 22..33 of the first row of cells), cut at the cell's edge.
  const Rgb white{255, 255, 255};
  EXPECT_GT(count_colour(sheet, 22, 34, 4, 12, white), 5);
  EXPECT_EQ(count_colour(sheet, 0, sheet.height, 12, 16, white), 0);
  EXPECT_EQ(count_colour(sheet, 4, 20, 0, sheet.width, white), 0);
}

TEST(ContactSheet, RejectsBadArguments) {
  EXPECT_THROW(contact_sheet({}, 2, 8), Error);
  EXPECT_THROW(contact_sheet({{data::Image(4, 4, 3), "x"}}, 0, 8), Error);
  EXPECT_THROW(contact_sheet({{data::Image(4, 4, 2), "x"}}, 1, 8), Error);
}

}  // namespace
}  // namespace vesseltune::eval
