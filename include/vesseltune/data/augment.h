#pragma once
// Vessel augmentations, drawn from a per-sample seed (the loader uses seed, epoch and position, so a
// resumed run sees the same ones). Geometric steps move image, mask and FOV together; photometric steps
// and CLAHE touch the image only.

#include <cstdint>

#include "vesseltune/data/shard_format.h"

namespace vesseltune::data {

struct AugmentOptions {
  bool enabled = true;
  double flip_probability = 0.5;        // each of left-right and top-bottom
  bool rotate90 = true;                 // 0..3 quarter turns, uniformly
  double affine_probability = 0.5;      // small rotation and scale
  double max_rotation_degrees = 15.0;   // uniform in [-max, max]
  double max_scale_change = 0.1;        // scale uniform in [1 - max, 1 + max]
  double photometric_probability = 0.8;
  double max_brightness = 0.1;          // added, in units of full scale
  double max_contrast = 0.2;            // factor uniform in [1 - max, 1 + max] about mid-grey
  double max_gamma = 0.2;               // exponent uniform in [1 - max, 1 + max]
  double clahe_probability = 0.0;       // optional contrast-limited equalisation
  double clahe_clip_limit = 2.0;
  int clahe_tiles = 8;
};

// Applies the augmentations SEED draws to SAMPLE's image, mask and FOV in place.
void augment(SampleRecord& sample, const AugmentOptions& options, uint64_t seed);

}  // namespace vesseltune::data
