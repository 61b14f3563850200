#include "vesseltune/data/augment.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "vesseltune/core/check.h"
#include "vesseltune/data/clahe.h"
#include "vesseltune/data/image_ops.h"
#include "vesseltune/data/random.h"

namespace vesseltune::data {

namespace {

template <typename Op>
void geometric(SampleRecord& sample, Op op) {
  sample.image = op(sample.image);
  sample.mask = op(sample.mask);
  sample.fov = op(sample.fov);
}

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

void augment(SampleRecord& sample, const AugmentOptions& options, uint64_t seed) {
  if (!options.enabled) return;
  VT_CHECK(sample.mask.height == sample.image.height && sample.fov.height == sample.image.height &&
               sample.mask.width == sample.image.width && sample.fov.width == sample.image.width,
           sample.source, ": image, mask and FOV sizes differ before augmentation");
  // Every draw happens whether or not its step applies, so one option never shifts another's values.
  Random draw(seed);
  const bool flip_lr = draw.chance(options.flip_probability);
  const bool flip_tb = draw.chance(options.flip_probability);
  const int turns = options.rotate90 ? draw.below(4) : 0;
  const bool affine = draw.chance(options.affine_probability);
  const double degrees = draw.uniform(-options.max_rotation_degrees, options.max_rotation_degrees);
  const double scale = draw.uniform(1.0 - options.max_scale_change, 1.0 + options.max_scale_change);
  const bool photometric = draw.chance(options.photometric_probability);
  const double brightness = draw.uniform(-options.max_brightness, options.max_brightness);
  const double contrast = draw.uniform(1.0 - options.max_contrast, 1.0 + options.max_contrast);
  const double gamma = draw.uniform(1.0 - options.max_gamma, 1.0 + options.max_gamma);
  const bool equalise = draw.chance(options.clahe_probability);

  if (flip_lr) geometric(sample, flip_horizontal);
  if (flip_tb) geometric(sample, flip_vertical);
  if (turns != 0) geometric(sample, [turns](const Image& image) { return rotate90(image, turns); });
  if (affine && (degrees != 0.0 || scale != 1.0)) {
    const int h = sample.image.height, w = sample.image.width;
    const AffineMap map = rotation_about_centre(h, w, degrees, scale);
    sample.image = warp(sample.image, map, h, w, Interpolation::bilinear);
    sample.mask = warp(sample.mask, map, h, w, Interpolation::nearest);
    sample.fov = warp(sample.fov, map, h, w, Interpolation::nearest);
  }
  if (photometric) {
    const std::array<uint8_t, 256> table = photometric_table(brightness, contrast, gamma);
    for (uint8_t& v : sample.image.pixels) v = table[v];
  }
  if (equalise) sample.image = clahe_rgb(sample.image, options.clahe_clip_limit, options.clahe_tiles);
}

}  // namespace vesseltune::data
