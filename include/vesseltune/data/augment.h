#pragma once
// Vessel augmentations, drawn from a per-sample seed (the loader uses seed, epoch and position, so a
// resumed run sees the same ones). Geometric steps move image, mask and FOV together; photometric steps
// and CLAHE touch the image only.
//
// They are applied while the model inputs are made, at the inputs' sizes, never at the native resolution:
// each input is resized from the native image first (Pillow's bicubic for images, nearest for masks), then
// flipped, turned and warped there. A 3504×2336 HRF image so costs one resize per input instead of four
// full-resolution passes, and a sample drawn without any augmentation gets exactly the unaugmented inputs.

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "vesseltune/data/image.h"

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

// What one seed drew for one sample. Default-constructed: no augmentation.
struct Augmentation {
  bool flip_left_right = false;  // applied first, in the source's orientation
  bool flip_top_bottom = false;
  int quarter_turns = 0;         // then 0..3 × 90° counter-clockwise (as numpy.rot90)
  bool affine = false;           // then rotation by DEGREES and scaling by SCALE about the centre
  double degrees = 0.0;
  double scale = 1.0;
  bool photometric = false;      // image only: brightness, contrast and gamma as one lookup table
  std::array<uint8_t, 256> tone{};
  bool equalise = false;         // image only: CLAHE after the tone table
  double clahe_clip_limit = 2.0;
  int clahe_tiles = 8;

  // Height and width of the augmented view of a HEIGHT×WIDTH source (odd quarter turns swap them).
  std::pair<int, int> size(int height, int width) const;
};

// The augmentation SEED draws under OPTIONS. Every draw happens whether or not its step applies, so one
// option never shifts another's values; disabled options give the default (none).
Augmentation draw_augmentation(const AugmentOptions& options, uint64_t seed);

enum class PlaneKind { image, mask };  // images: bicubic, bilinear warp, photometric; masks: nearest throughout

// SOURCE (native resolution) as AUGMENTATION shows it, at OUT_HEIGHT × OUT_WIDTH: resized, flipped and
// turned, warped (outside the source reads 0), and for images toned and equalised.
Image render_augmented(const Image& source, const Augmentation& augmentation, int out_height, int out_width,
                       PlaneKind kind);

// The same at each (height, width) of SIZES, in that order; images share one read of the source (resample.h).
std::vector<Image> render_augmented(const Image& source, const Augmentation& augmentation,
                                    const std::vector<std::pair<int, int>>& sizes, PlaneKind kind);

}  // namespace vesseltune::data
