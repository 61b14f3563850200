// Pixel operations, augmentations and model inputs against hand-computed values.

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "vesseltune/core/check.h"
#include "vesseltune/data/augment.h"
#include "vesseltune/data/clahe.h"
#include "vesseltune/data/image_ops.h"
#include "vesseltune/data/model_inputs.h"
#include "vesseltune/data/resample.h"

namespace vesseltune::data {
namespace {

// Flips and quarter turns done the plain way, pixel by pixel: the references the augmentation's single warp
// must equal (the library has no other use for them). Checked against hand values first.
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

// QUARTER_TURNS × 90° counter-clockwise (as numpy.rot90); odd turns swap height and width.
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

// 2×3 one-channel image:  1 2 3
//                         4 5 6
Image small() {
  Image image(2, 3, 1);
  image.pixels = {1, 2, 3, 4, 5, 6};
  return image;
}

TEST(ImageOps, FlipsAndQuarterTurnsMatchHandComputedResults) {
  EXPECT_EQ(flip_horizontal(small()).pixels, (std::vector<uint8_t>{3, 2, 1, 6, 5, 4}));
  EXPECT_EQ(flip_vertical(small()).pixels, (std::vector<uint8_t>{4, 5, 6, 1, 2, 3}));
  // numpy.rot90([[1,2,3],[4,5,6]]) = [[3,6],[2,5],[1,4]]
  const Image once = rotate90(small(), 1);
  EXPECT_EQ(once.height, 3);
  EXPECT_EQ(once.width, 2);
  EXPECT_EQ(once.pixels, (std::vector<uint8_t>{3, 6, 2, 5, 1, 4}));
  EXPECT_EQ(rotate90(small(), 2).pixels, (std::vector<uint8_t>{6, 5, 4, 3, 2, 1}));
  EXPECT_EQ(rotate90(small(), 3).pixels, (std::vector<uint8_t>{4, 1, 5, 2, 6, 3}));
  EXPECT_EQ(rotate90(small(), 4).pixels, small().pixels);
}

TEST(ImageOps, NearestResizeFollowsTorchNearest) {
  // 2×3 → 4×2: rows floor(y·2/4) = 0,0,1,1; columns floor(x·3/2) = 0,1.
  EXPECT_EQ(resize_nearest(small(), 4, 2).pixels, (std::vector<uint8_t>{1, 2, 1, 2, 4, 5, 4, 5}));
}

TEST(ImageOps, WarpWithIdentityOrHalfTurnIsExact) {
  Image image(5, 4, 1);
  for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = static_cast<uint8_t>(10 * i);
  EXPECT_EQ(warp(image, rotation_about_centre(5, 4, 0, 1), 5, 4, Interpolation::bilinear).pixels, image.pixels);
  EXPECT_EQ(warp(image, rotation_about_centre(5, 4, 0, 1), 5, 4, Interpolation::nearest).pixels, image.pixels);
  // 180° about the centre is a flip both ways.
  const Image half = warp(image, rotation_about_centre(5, 4, 180, 1), 5, 4, Interpolation::nearest);
  EXPECT_EQ(half.pixels, rotate90(image, 2).pixels);
}

TEST(Clahe, ConstantImageMapsToTheClippedHistogramsValue) {
  // 16×16 of 0, one tile, clip 2: limit = 2·256/256 = 2, excess 254 spread one each over bins 0..253,
  // so bin 0 holds 3 and the output is round(255 · 3 / 256) = 3.
  const Image out = clahe_plane(Image(16, 16, 1, 0), 2.0, 1);
  for (uint8_t v : out.pixels) ASSERT_EQ(v, 3);
}

TEST(Clahe, RgbKeepsChannelRatios) {
  Image image(16, 16, 3);
  for (int y = 0; y < 16; ++y) {
    for (int x = 0; x < 16; ++x) {
      const auto v = static_cast<uint8_t>(60 + 4 * x);
      image.at(y, x, 0) = v;
      image.at(y, x, 1) = v / 2;
      image.at(y, x, 2) = v / 4;
    }
  }
  const Image out = clahe_rgb(image, 2.0, 2);
  for (int x = 0; x < 16; x += 5) {
    EXPECT_NEAR(out.at(8, x, 1), out.at(8, x, 0) / 2.0, 1.0);
    EXPECT_NEAR(out.at(8, x, 2), out.at(8, x, 0) / 4.0, 1.0);
  }
}

TEST(Augment, MaskFovAndImageStayAligned) {
  // The image carries the mask in its red channel and the FOV in its green one; after any augmentation
  // (geometry and photometry), a pixel's red and green must still say what its mask and FOV say.
  const int h = 48, w = 64;
  SampleRecord base;
  base.image = Image(h, w, 3);
  base.mask = Image(h, w, 1);
  base.fov = Image(h, w, 1);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      const bool vessel = (x / 6 + y / 5) % 3 == 0 || x == y;
      const bool inside = (x - 32) * (x - 32) + (y - 24) * (y - 24) < 22 * 22 || x < 10;
      base.mask.at(y, x) = vessel;
      base.fov.at(y, x) = inside;
      base.image.at(y, x, 0) = vessel ? 255 : 0;
      base.image.at(y, x, 1) = inside ? 255 : 0;
    }
  }
  AugmentOptions options;
  options.flip_probability = 0.5;
  options.affine_probability = 1.0;
  options.max_rotation_degrees = 25;
  options.max_scale_change = 0.2;
  options.photometric_probability = 1.0;
  options.clahe_probability = 0.0;
  int changed = 0;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    const Augmentation drawn = draw_augmentation(options, seed);
    const auto [ah, aw] = drawn.size(h, w);
    // At the augmented full size, and at a smaller size with another aspect ratio (as SAM2's 1024² input
    // of an HRF image), where the warp runs on resized planes.
    for (const auto& [oh, ow] : {std::pair{ah, aw}, std::pair{ah / 2, aw / 3}}) {
      const Image image = render_augmented(base.image, drawn, oh, ow, PlaneKind::image);
      const Image mask = render_augmented(base.mask, drawn, oh, ow, PlaneKind::mask);
      const Image fov = render_augmented(base.fov, drawn, oh, ow, PlaneKind::mask);
      ASSERT_EQ(image.height, oh);
      ASSERT_EQ(mask.width, ow);
      if (oh == ah) changed += mask.pixels != base.mask.pixels;
      int agree = 0, total = 0;
      for (int y = 0; y < oh; ++y) {
        for (int x = 0; x < ow; ++x) {
          const int red = image.at(y, x, 0), green = image.at(y, x, 1);
          // Bilinear edges blend; where the image is decisive it must match the nearest-sampled planes.
          if (red < 60 || red > 200) {
            ++total;
            agree += (red > 200) == (mask.at(y, x) == 1);
          }
          if (green < 60 || green > 200) {
            ++total;
            agree += (green > 200) == (fov.at(y, x) == 1);
          }
        }
      }
      EXPECT_GT(agree, total * (oh == ah ? 0.97 : 0.93)) << "seed " << seed << " at " << oh << "x" << ow;
    }
  }
  EXPECT_GT(changed, 30);  // the augmentations did move things
}

TEST(Augment, SmallerViewsShowTheSameMotion) {
  // A mask rendered at a third of the width and half the height must be the full-size rendering seen at
  // that resolution: its pixel (y, x) lies at ((y + 0.5) * 2, (x + 0.5) * 3) of the full one. A map not
  // conjugated by the resize would turn the small view by another angle about another centre.
  const int h = 96, w = 120;
  Image mask(h, w, 1);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) mask.at(y, x) = ((x / 24) + (y / 16)) % 2;  // 8×8 cells in the smaller view
  }
  AugmentOptions options;
  options.affine_probability = 1.0;
  options.max_rotation_degrees = 25;
  options.max_scale_change = 0.2;
  // Measured: 91-97 % per seed (cell edges: the smaller view's nearest resize reads the top-left source pixel
  // of each 3×2 block, not its centre), mean 95 %; the same warp without the conjugation gives 65-97 %, mean 82 %.
  double total_fraction = 0;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    const Augmentation drawn = draw_augmentation(options, seed);
    const auto [ah, aw] = drawn.size(h, w);
    const Image full = render_augmented(mask, drawn, ah, aw, PlaneKind::mask);
    const Image reduced = render_augmented(mask, drawn, ah / 2, aw / 3, PlaneKind::mask);
    int agree = 0;
    for (int y = 0; y < reduced.height; ++y) {
      for (int x = 0; x < reduced.width; ++x) agree += reduced.at(y, x) == full.at(2 * y + 1, 3 * x + 1);
    }
    const double fraction = static_cast<double>(agree) / (reduced.height * reduced.width);
    total_fraction += fraction;
    EXPECT_GT(fraction, 0.88) << "seed " << seed << " (" << drawn.degrees << " degrees)";
  }
  EXPECT_GT(total_fraction / 20, 0.93);
}

TEST(Augment, FlipsAndTurnsCopyPixelsExactly) {
  // Without the small rotation the one warp must equal the exact steps: resize, flips, quarter turns.
  Image image(6, 9, 3);
  for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = static_cast<uint8_t>(i * 41 + 7);
  for (int turns = 0; turns < 4; ++turns) {
    for (int flips = 0; flips < 4; ++flips) {
      Augmentation drawn;
      drawn.flip_left_right = flips & 1;
      drawn.flip_top_bottom = flips & 2;
      drawn.quarter_turns = turns;
      for (const auto& [oh, ow] : {drawn.size(6, 9), drawn.size(4, 5)}) {
        Image expected = resize_bicubic(image, drawn.size(oh, ow).first, drawn.size(oh, ow).second);
        if (drawn.flip_left_right) expected = flip_horizontal(expected);
        if (drawn.flip_top_bottom) expected = flip_vertical(expected);
        expected = rotate90(expected, turns);
        const Image got = render_augmented(image, drawn, oh, ow, PlaneKind::image);
        ASSERT_EQ(got.height, expected.height);
        EXPECT_EQ(got.pixels, expected.pixels) << turns << " turns, flips " << flips << ", " << oh << "x" << ow;
      }
    }
  }
}

TEST(Augment, SameSeedSameResultAndDisabledDoesNothing) {
  Image image(10, 12, 3);
  for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = static_cast<uint8_t>(i * 37);
  AugmentOptions options;
  options.photometric_probability = 1.0;
  const Augmentation a = draw_augmentation(options, 5), b = draw_augmentation(options, 5);
  EXPECT_EQ(render_augmented(image, a, 10, 12, PlaneKind::image).pixels,
            render_augmented(image, b, 10, 12, PlaneKind::image).pixels);
  options.enabled = false;
  const Augmentation none = draw_augmentation(options, 5);
  // No augmentation: the plain resize (here to the same size: Pillow returns the image unchanged).
  EXPECT_EQ(render_augmented(image, none, 10, 12, PlaneKind::image).pixels, image.pixels);
  EXPECT_EQ(render_augmented(image, none, 5, 7, PlaneKind::image).pixels, resize_bicubic(image, 5, 7).pixels);
}

TEST(ModelInputs, TileGridFollowsInternVLDynamicPreprocess) {
  const ModelInputOptions o;  // 448 px tiles, 1..12
  auto grid = [&](int w, int h) {
    const TileGrid g = choose_tile_grid(w, h, o);
    return std::pair{g.columns, g.rows};
  };
  // DRIVE 565×584: aspect 0.967, nearest 1:1 grids tie; 2×2 needs area > 0.5·448²·4 = 401,408 > 329,960.
  EXPECT_EQ(grid(565, 584), (std::pair{1, 1}));
  // 1024×1024: 1,048,576 > 401,408 so 2×2 replaces 1×1; 3×3 needs > 903,168 too: 3×3 wins.
  EXPECT_EQ(grid(1024, 1024), (std::pair{3, 3}));
  // HRF 3504×2336: aspect 1.5 exactly = 3:2 (6 tiles); 6:4 (24) is beyond 12.
  EXPECT_EQ(grid(3504, 2336), (std::pair{3, 2}));
  // 1000×300: aspect 3.33, candidates 3:1 (diff 0.33) and 4:1 (0.67): 3×1.
  EXPECT_EQ(grid(1000, 300), (std::pair{3, 1}));
  // 300×2000: aspect 0.15, nearest is 1:6 (0.167), then 1:7 (0.143 → diff 0.007 < 0.017): 1×7.
  EXPECT_EQ(grid(300, 2000), (std::pair{1, 7}));
}

TEST(ModelInputs, ShapesNormalisationAndThumbnail) {
  SampleRecord record;
  record.image = Image(300, 600, 3, 0);
  for (int y = 0; y < 300; ++y) {
    for (int x = 0; x < 600; ++x) record.image.at(y, x, 0) = 255;  // pure red
  }
  record.mask = Image(300, 600, 1, 0);
  record.mask.at(0, 599) = 1;  // top-right pixel → top-right of the 256×256 mask
  record.fov = Image(300, 600, 1, 1);
  record.texts = {"a", "b"};
  ModelInputOptions o;
  o.full_resolution = true;
  const Sample s = make_model_inputs(record, o, 1);
  // 600×300 → aspect 2 → 2×1 grid plus a thumbnail.
  EXPECT_EQ(s.grid.columns, 2);
  EXPECT_EQ(s.grid.rows, 1);
  EXPECT_EQ(s.tiles.sizes(), (std::vector<int64_t>{3, 3, 448, 448}));
  EXPECT_EQ(s.sam_image.sizes(), (std::vector<int64_t>{3, 1024, 1024}));
  EXPECT_EQ(s.mask.sizes(), (std::vector<int64_t>{256, 256}));
  EXPECT_EQ(s.full_mask.sizes(), (std::vector<int64_t>{300, 600}));
  EXPECT_EQ(s.tiles.scalar_type(), at::kByte);
  EXPECT_EQ(s.sam_image.scalar_type(), at::kByte);
  // A constant image resizes to itself: channels first, red 255, green and blue 0.
  EXPECT_EQ(s.sam_image[0].min().item<uint8_t>(), 255);
  EXPECT_EQ(s.sam_image[1].max().item<uint8_t>(), 0);
  EXPECT_EQ(s.tiles[2][0].min().item<uint8_t>(), 255);  // the thumbnail
  EXPECT_EQ(s.tiles[1][2].max().item<uint8_t>(), 0);
  // Nearest: output (0, 255) reads input (0, floor(255·600/256) = 597): 0; the 1 at column 599 is not hit.
  EXPECT_EQ(s.mask.sum().item<int64_t>(), 0);
  EXPECT_EQ(s.full_mask.sum().item<int64_t>(), 1);
  EXPECT_EQ(s.fov.sum().item<int64_t>(), 256 * 256);
  EXPECT_TRUE(s.text == "a" || s.text == "b");
  // A quarter turn counter-clockwise: the grid follows the turned 300×600 view (1 column × 2 rows), and the
  // top-right pixel (0, 599) moves to the top-left: numpy.rot90 puts (y, x) at (W - 1 - x, y).
  Augmentation turn;
  turn.quarter_turns = 1;
  const Sample turned = make_model_inputs(record, o, 1, turn);
  EXPECT_EQ(turned.grid.columns, 1);
  EXPECT_EQ(turned.grid.rows, 2);
  EXPECT_EQ(turned.full_mask.sizes(), (std::vector<int64_t>{600, 300}));
  EXPECT_EQ(turned.full_mask[0][0].item<uint8_t>(), 1);
  EXPECT_EQ(turned.full_mask.sum().item<int64_t>(), 1);
}

TEST(ModelInputs, NormalizeForModelGivesImageNetNormalisedFloats) {
  Batch batch;
  batch.tiles = at::zeros({2, 3, 4, 4}, at::kByte);
  batch.tiles[1][0].fill_(255);
  batch.sam_images = at::full({1, 3, 8, 8}, 128, at::kByte);
  const ModelImages images = normalize_for_model(batch, at::kCPU);
  EXPECT_EQ(images.tiles.scalar_type(), at::kFloat);
  EXPECT_EQ(images.tiles.sizes(), (std::vector<int64_t>{2, 3, 4, 4}));
  EXPECT_EQ(images.sam_images.sizes(), (std::vector<int64_t>{1, 3, 8, 8}));
  // (1 - 0.485) / 0.229 for red 255, (0 - 0.456) / 0.224 for green 0, (128/255 - 0.406) / 0.225 for blue 128.
  EXPECT_NEAR(images.tiles[1][0][3][3].item<float>(), 2.2489083f, 1e-5);
  EXPECT_NEAR(images.tiles[0][1][0][0].item<float>(), -2.0357143f, 1e-5);
  EXPECT_NEAR(images.sam_images[0][2][5][5].item<float>(), 0.4264924f, 1e-5);
  EXPECT_EQ(normalize_for_model(batch, at::kCPU, {}, at::kDouble).tiles.scalar_type(), at::kDouble);
  batch.sam_images = batch.sam_images.to(at::kFloat);
  EXPECT_THROW(normalize_for_model(batch, at::kCPU), Error);  // already floats: refused, not normalised twice
}

}  // namespace
}  // namespace vesseltune::data
