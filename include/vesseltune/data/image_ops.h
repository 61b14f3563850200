#pragma once
// Pixel geometry on Image: exact flips and quarter turns, an affine warp that samples the image bilinearly
// and masks by nearest neighbour at the same source points (so they stay aligned), and the nearest-neighbour
// resize of masks. (Images are resized bicubically by resample.h.)

#include "vesseltune/data/image.h"

namespace vesseltune::data {

Image flip_horizontal(const Image& image);  // mirror left-right
Image flip_vertical(const Image& image);    // mirror top-bottom
// QUARTER_TURNS × 90° counter-clockwise (as numpy.rot90); odd turns swap height and width.
Image rotate90(const Image& image, int quarter_turns);
Image crop(const Image& image, int top, int left, int height, int width);

// Maps an output pixel centre (x + 0.5, y + 0.5) to a point in the source image (same convention).
struct AffineMap {
  double xx = 1, xy = 0, x0 = 0;  // source_x = xx * x + xy * y + x0
  double yx = 0, yy = 1, y0 = 0;  // source_y = yx * x + yy * y + y0
};

// Rotation by DEGREES and scaling by SCALE about the centre of a HEIGHT×WIDTH image,
// as an output→source map for warp().
AffineMap rotation_about_centre(int height, int width, double degrees, double scale);

enum class Interpolation { nearest, bilinear };

// Output pixel = source sampled at MAP(pixel centre); points outside the source give 0.
Image warp(const Image& image, const AffineMap& map, int out_height, int out_width, Interpolation interpolation);

// Nearest neighbour with PyTorch's "nearest" rule: source index = floor(output index × in / out).
Image resize_nearest(const Image& image, int out_height, int out_width);

}  // namespace vesseltune::data
