#pragma once
// Pixel geometry on Image: cropping, affine maps (flips, quarter turns and rotations compose into one) and a warp
// that samples the image bilinearly and masks by nearest neighbour at the same source points (so they stay
// aligned), and the nearest-neighbour resize of masks. (Images are resized bicubically by resample.h.)

#include "vesseltune/data/image.h"

namespace vesseltune::data {

Image crop(const Image& image, int top, int left, int height, int width);

// An affine map between continuous pixel coordinates, where pixel (x, y) covers [x, x + 1) × [y, y + 1):
// x' = xx x + xy y + x0, y' = yx x + yy y + y0. warp() takes it as output → source.
struct AffineMap {
  double xx = 1, xy = 0, x0 = 0;
  double yx = 0, yy = 1, y0 = 0;
};

// OUTER after INNER: p → OUTER(INNER(p)).
AffineMap compose(const AffineMap& outer, const AffineMap& inner);

// Rotation by DEGREES and scaling by SCALE about the centre of a HEIGHT×WIDTH image,
// as an output→source map for warp().
AffineMap rotation_about_centre(int height, int width, double degrees, double scale);

// MAP, made for a HEIGHT×WIDTH image, as the same motion of a copy of that image resized to
// OUT_HEIGHT×OUT_WIDTH: conjugated by the per-axis scale out / in.
AffineMap resized_map(const AffineMap& map, int height, int width, int out_height, int out_width);

enum class Interpolation { nearest, bilinear };

// Output pixel = source sampled at MAP(pixel centre); points outside the source give 0. Bilinear weights are
// in 1/256 steps, so a map that lands on pixel centres (flips, quarter turns) copies pixels exactly.
Image warp(const Image& image, const AffineMap& map, int out_height, int out_width, Interpolation interpolation);

// Nearest neighbour with PyTorch's "nearest" rule: source index = floor(output index × in / out).
Image resize_nearest(const Image& image, int out_height, int out_width);

}  // namespace vesseltune::data
