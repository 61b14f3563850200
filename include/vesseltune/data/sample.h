#pragma once
// What the trainer gets: one Sample per image, ready for Sa2VA's two image branches and the mask loss,
// and a Batch of them. Images are uint8 RGB, channels first, already resized (normalize_for_model in
// model_inputs.h makes the normalised floats on the model's device); masks are uint8 0/1.

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "vesseltune/data/sampler.h"

namespace vesseltune::data {

struct TileGrid {
  int columns = 1;
  int rows = 1;
  int tiles() const { return columns * rows; }
};

struct Sample {
  at::Tensor tiles;      // [T, 3, 448, 448] uint8 InternVL branch: grid tiles row by row, then the thumbnail if T > 1
  TileGrid grid;         // the grid the tiles came from (T = grid.tiles() + thumbnail)
  at::Tensor sam_image;  // [3, 1024, 1024] uint8 SAM2 branch: the whole image resized directly
  at::Tensor mask;       // [256, 256] vessel mask at the loss resolution (nearest)
  at::Tensor fov;        // [256, 256] field of view at the loss resolution (nearest)
  at::Tensor full_mask;  // [H, W] at the (augmented) native resolution, for validation; undefined unless asked
  at::Tensor full_fov;   // [H, W] likewise
  std::string text;      // the referring expression drawn for this sample, e.g. "blood vessels"
  int64_t index = -1;    // sample index in the PackedDataset
  std::string source;    // file it was packed from
  uint64_t seed = 0;     // what its augmentation, text and prompt are drawn from: mix of (seed, epoch, global position)
};

struct Batch {
  at::Tensor tiles;                      // [sum of T, 3, 448, 448] uint8, samples one after another
  std::vector<int64_t> tiles_per_sample; // T of each sample (Sa2VA repeats <IMG_CONTEXT> 256 × T times)
  at::Tensor sam_images;                 // [B, 3, 1024, 1024] uint8
  at::Tensor masks;                      // [B, 256, 256]
  at::Tensor fovs;                       // [B, 256, 256]
  std::vector<at::Tensor> full_masks;    // B × [H_i, W_i] when asked for, else empty
  std::vector<at::Tensor> full_fovs;
  std::vector<std::string> texts;
  std::vector<std::string> sources;
  std::vector<int64_t> indices;
  std::vector<uint64_t> seeds;           // Sample::seed of each sample
  SamplerPosition position;  // where the sampler stands once this batch is consumed (save it to resume)

  int64_t size() const { return static_cast<int64_t>(indices.size()); }
};

// Stacks SAMPLES (all with the same tile size, SAM size and loss size) into one batch.
Batch collate(std::vector<Sample> samples);

}  // namespace vesseltune::data
