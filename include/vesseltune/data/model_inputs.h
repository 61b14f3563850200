#pragma once
// Turns a (possibly augmented) SampleRecord into Sa2VA's inputs. InternVL branch: InternVL's
// dynamic_preprocess — pick the grid (columns × rows, min..max tiles) whose aspect ratio is closest to the
// image's (ties go to the larger grid when the image has more than half its area), resize the image to
// it bicubically, cut 448×448 tiles, and add a 448×448 thumbnail of the whole image when there is more
// than one tile. SAM2 branch: direct resize to 1024×1024. Resizes are Pillow's bicubic (resample.h), as in
// the Python reference. The images stay uint8 on the host (a quarter of float32's bytes to make, queue
// and copy); normalize_for_model turns a batch into the ImageNet-normalised floats on the model's device.

#include <array>
#include <cstdint>

#include "vesseltune/data/augment.h"
#include "vesseltune/data/sample.h"
#include "vesseltune/data/shard_format.h"

namespace vesseltune::data {

struct ModelInputOptions {
  int tile_size = 448;
  int min_tiles = 1;
  int max_tiles = 12;          // Sa2VA's max_dynamic_patch
  bool use_thumbnail = true;
  int sam_size = 1024;
  int loss_size = 256;         // mask and FOV for the loss
  bool full_resolution = false;  // also return mask and FOV at native resolution (validation)
  std::array<float, 3> mean = {0.485f, 0.456f, 0.406f};  // ImageNet, used by normalize_for_model
  std::array<float, 3> std = {0.229f, 0.224f, 0.225f};
};

// InternVL's find_closest_aspect_ratio over the grids with min_tiles..max_tiles tiles.
TileGrid choose_tile_grid(int width, int height, const ModelInputOptions& options);

// One-channel 0/1 plane → [H, W] uint8 tensor.
at::Tensor plane_tensor(const Image& plane);

// RECORD's inputs as AUGMENTATION shows it (augment.h; the default is none, then every resize is straight
// from the native image, as in Sa2VA's preprocessing). SEED picks the referring text when there are several.
Sample make_model_inputs(const SampleRecord& record, const ModelInputOptions& options, uint64_t seed,
                         const Augmentation& augmentation = {});

// What Sa2VA's two image branches take, on the model's device: float tensors (v / 255 - mean) / std.
struct ModelImages {
  at::Tensor tiles;       // [sum of T, 3, tile, tile] InternVL branch
  at::Tensor sam_images;  // [B, 3, S, S] SAM2 branch
};

// Copies BATCH's uint8 tiles and SAM2 images to DEVICE as they are, then normalises them there with
// OPTIONS' mean and std (the loader's LoaderOptions::inputs) and converts them to DTYPE.
ModelImages normalize_for_model(const Batch& batch, at::Device device, const ModelInputOptions& options = {},
                                at::ScalarType dtype = at::kFloat);

}  // namespace vesseltune::data
