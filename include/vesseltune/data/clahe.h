#pragma once
// Contrast-limited adaptive histogram equalisation (Zuiderveld 1994, OpenCV's variant): the usual
// contrast boost for retinal vessels. Written here because none of the project's libraries has it
// (OpenCV would be a large dependency for one function).

#include "vesseltune/data/image.h"

namespace vesseltune::data {

// Equalises one-channel PLANE in TILES × TILES regions; CLIP_LIMIT as OpenCV's (2.0 is typical).
Image clahe_plane(const Image& plane, double clip_limit, int tiles);

// For RGB: equalises the value channel V = max(R, G, B) and scales each pixel's RGB by V'/V, which keeps
// hue and saturation.
Image clahe_rgb(const Image& image, double clip_limit, int tiles);

}  // namespace vesseltune::data
