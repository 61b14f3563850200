#include "vesseltune/data/augment.h"

#include <algorithm>
#include <cmath>

#include "vesseltune/core/check.h"
#include "vesseltune/data/clahe.h"
#include "vesseltune/data/image_ops.h"
#include "vesseltune/data/random.h"
#include "vesseltune/data/resample.h"

namespace vesseltune::data {

namespace {

// brightness/contrast/gamma as one lookup table: x = (v/255)^gamma, x = (x - 0.5) * contrast + 0.5 + brightness.
std::array<uint8_t, 256> photometric_table(double brightness, double contrast, double gamma) {
  std::array<uint8_t, 256> table{};
  for (int v = 0; v < 256; ++v) {
    double x = std::pow(v / 255.0, gamma);
    x = (x - 0.5) * contrast + 0.5 + brightness;
    table[v] = static_cast<uint8_t>(std::lround(std::clamp(x, 0.0, 1.0) * 255.0));
  }
  return table;
}

}  // namespace

std::pair<int, int> Augmentation::size(int height, int width) const {
  return quarter_turns % 2 == 0 ? std::pair{height, width} : std::pair{width, height};
}

Augmentation draw_augmentation(const AugmentOptions& options, uint64_t seed) {
  Augmentation drawn;
  if (!options.enabled) return drawn;
  Random draw(seed);
  drawn.flip_left_right = draw.chance(options.flip_probability);
  drawn.flip_top_bottom = draw.chance(options.flip_probability);
  drawn.quarter_turns = options.rotate90 ? draw.below(4) : 0;
  drawn.affine = draw.chance(options.affine_probability);
  drawn.degrees = draw.uniform(-options.max_rotation_degrees, options.max_rotation_degrees);
  drawn.scale = draw.uniform(1.0 - options.max_scale_change, 1.0 + options.max_scale_change);
  drawn.photometric = draw.chance(options.photometric_probability);
  const double brightness = draw.uniform(-options.max_brightness, options.max_brightness);
  const double contrast = draw.uniform(1.0 - options.max_contrast, 1.0 + options.max_contrast);
  const double gamma = draw.uniform(1.0 - options.max_gamma, 1.0 + options.max_gamma);
  drawn.equalise = draw.chance(options.clahe_probability);
  drawn.affine = drawn.affine && (drawn.degrees != 0.0 || drawn.scale != 1.0);
  if (drawn.photometric) drawn.tone = photometric_table(brightness, contrast, gamma);
  drawn.clahe_clip_limit = options.clahe_clip_limit;
  drawn.clahe_tiles = options.clahe_tiles;
  return drawn;
}

namespace {

// The flips and quarter turns as one output → source map: from the turned view (OUT_HEIGHT × OUT_WIDTH) to
// the unturned, unflipped one (pixel coordinates, continuous).
AffineMap turns_and_flips(const Augmentation& augmentation, int out_height, int out_width) {
  const auto [height, width] = augmentation.size(out_height, out_width);  // the unturned view
  const double h = height, w = width;
  AffineMap turn;  // numpy.rot90, k turns counter-clockwise: out(y, x) = in(x, w - 1 - y) for k = 1, etc.
  switch (augmentation.quarter_turns % 4) {
    case 1: turn = {0, -1, w, 1, 0, 0}; break;
    case 2: turn = {-1, 0, w, 0, -1, h}; break;
    case 3: turn = {0, 1, 0, -1, 0, h}; break;
    default: break;
  }
  AffineMap flip;
  if (augmentation.flip_left_right) flip.xx = -1, flip.x0 = w;
  if (augmentation.flip_top_bottom) flip.yy = -1, flip.y0 = h;
  return compose(flip, turn);
}

}  // namespace

std::vector<Image> render_augmented(const Image& source, const Augmentation& augmentation,
                                    const std::vector<std::pair<int, int>>& sizes, PlaneKind kind) {
  const bool image = kind == PlaneKind::image;
  // Resize in the source's orientation: to each output's size with height and width swapped by odd turns.
  std::vector<std::pair<int, int>> unturned;
  for (const auto& [out_height, out_width] : sizes) {
    VT_CHECK(out_height > 0 && out_width > 0, "augmented view of ", out_height, "x", out_width, " pixels");
    unturned.push_back(augmentation.size(out_height, out_width));
  }
  std::vector<Image> views;
  if (image) {
    views = resize_bicubic(source, unturned);
  } else {
    for (const auto& [height, width] : unturned) views.push_back(resize_nearest(source, height, width));
  }
  const bool geometric = augmentation.flip_left_right || augmentation.flip_top_bottom ||
                         augmentation.quarter_turns % 4 != 0 || augmentation.affine;
  for (size_t i = 0; i < views.size(); ++i) {
    const auto [out_height, out_width] = sizes[i];
    Image& view = views[i];
    if (geometric) {
      // One warp for all of the geometry. The rotation is about the centre of the augmented view at full size;
      // seen at this size it is that motion with each axis scaled by out / full.
      AffineMap map = turns_and_flips(augmentation, out_height, out_width);
      if (augmentation.affine) {
        const auto [full_height, full_width] = augmentation.size(source.height, source.width);
        const AffineMap motion = rotation_about_centre(full_height, full_width, augmentation.degrees, augmentation.scale);
        map = compose(map, resized_map(motion, full_height, full_width, out_height, out_width));
      }
      // Flips and turns alone land on pixel centres: nearest copies the same pixels as bilinear would, cheaper.
      const bool blend = image && augmentation.affine;
      view = warp(view, map, out_height, out_width, blend ? Interpolation::bilinear : Interpolation::nearest);
    }
    if (image && augmentation.photometric) {
      for (uint8_t& v : view.pixels) v = augmentation.tone[v];
    }
    if (image && augmentation.equalise) view = clahe_rgb(view, augmentation.clahe_clip_limit, augmentation.clahe_tiles);
  }
  return views;
}

Image render_augmented(const Image& source, const Augmentation& augmentation, int out_height, int out_width,
                       PlaneKind kind) {
  return std::move(render_augmented(source, augmentation, {{out_height, out_width}}, kind)[0]);
}

}  // namespace vesseltune::data
