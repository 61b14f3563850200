#pragma once
// Pictures of a segmentation for people: the prediction's errors over the image, and a grid of such pictures.
// Masks are what the evaluation has: uint8 [H, W] tensors of 0/1 on the CPU; images are data::Image.

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "vesseltune/data/image.h"

namespace vesseltune::eval {

// Overlay colours (RGB).
constexpr uint8_t kTruePositiveColour[3] = {0, 255, 0};   // green: vessel found
constexpr uint8_t kFalsePositiveColour[3] = {255, 0, 0};  // red: background called vessel
constexpr uint8_t kFalseNegativeColour[3] = {0, 0, 255};  // blue: vessel missed

// IMAGE (RGB, H×W) with every true-positive, false-positive and false-negative pixel painted in its colour and
// true negatives showing the image; outside the field of view every pixel (painted or not) is at half
// brightness, so errors there stay visible but the region the FOV metrics count stands out. Under it, a black
// legend strip names the three colours (a swatch of each and its meaning in white text).
data::Image render_overlay(const data::Image& image, const at::Tensor& predicted, const at::Tensor& truth,
                           const at::Tensor& fov);

// IMAGE (grey or RGB) with the pixels of MASK tinted green, half image and half colour: a prediction without
// ground truth (vesseltune-predict).
data::Image render_mask_overlay(const data::Image& image, const at::Tensor& mask);

struct SheetEntry {
  data::Image image;  // 1 or 3 channels
  std::string caption;
};

// One RGB image: the entries in a grid of COLUMNS, row by row, each resized (bicubic, keeping its aspect) to
// CELL_WIDTH pixels wide with its caption (one line of white text, cut at the cell's edge) under it; cells are
// as tall as the tallest resized entry plus the caption line, 4 black pixels apart and from the border.
data::Image contact_sheet(const std::vector<SheetEntry>& entries, int columns, int cell_width);

// MASK (uint8 [H, W] of 0/1) as a one-channel image of 0/255: how masks are written as PNG.
data::Image mask_image(const at::Tensor& mask);

}  // namespace vesseltune::eval
