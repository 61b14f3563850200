#pragma once
// The 2-D skeleton that clDice measures with: scikit-image's skeletonize (skimage.morphology.skeletonize, method
// "zhang", the default for 2-D), reproduced pixel for pixel so that our clDice is the one vessel papers compute in
// Python. It is Zhang–Suen thinning (CACM 27(3), 1984): the mask, padded with background, loses border pixels in
// two alternating sub-iterations until a pass removes nothing; whether a pixel goes is decided by a table over its
// 8 neighbours, all pixels of a sub-iteration judged on the mask as it was when the sub-iteration began. The table
// is the paper's conditions except in 25 of the 256 neighbourhoods, where scikit-image's hand-set values are taken
// (skeleton.cpp says why).

#include <ATen/ATen.h>

namespace vesseltune::metrics {

// MASK: uint8 [H, W] of 0/1 on the CPU. Returns the skeleton as uint8 [H, W] of 0/1 (a subset of MASK).
at::Tensor skeletonize(const at::Tensor& mask);

}  // namespace vesseltune::metrics
