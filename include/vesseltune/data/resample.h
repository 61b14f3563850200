#pragma once
// Bicubic resizing of 8-bit images exactly as Pillow does it (Image.resize(size, BICUBIC), Pillow's
// libImaging/Resample.c), because Sa2VA's Python preprocessing resizes through Pillow in both image
// branches: SAM2's DirectResize(1024) and InternVL's dynamic_preprocess (grid resize and thumbnail).
// Matching it keeps the model's inputs what it was trained and evaluated on.
//
// Pillow's method: a separable convolution with the cubic kernel a = -0.5 (support 2), widened by the
// scale factor when shrinking so that it averages over every input pixel (antialiasing); per output
// position the weights are normalised to sum to 1 and then rounded to fixed point (22 fractional bits).
// The horizontal pass runs first and is rounded and clipped to 8 bits, then the vertical pass; an axis
// whose size does not change is not filtered at all.

#include <utility>
#include <vector>

#include "vesseltune/data/image.h"

namespace vesseltune::data {

// IMAGE (1 or 3 channels) resized to OUT_HEIGHT × OUT_WIDTH; the same size returns a copy.
Image resize_bicubic(const Image& image, int out_height, int out_width);

// IMAGE resized to each (height, width) of SIZES, in that order: the same results as one call per size, but
// the source is read and laid out for the horizontal pass once (the model inputs take three sizes of an image).
std::vector<Image> resize_bicubic(const Image& image, const std::vector<std::pair<int, int>>& sizes);

}  // namespace vesseltune::data
