#include "vesseltune/data/sample.h"

#include "vesseltune/core/check.h"

namespace vesseltune::data {

Batch collate(std::vector<Sample> samples) {
  VT_CHECK(!samples.empty(), "collate: no samples");
  Batch batch;
  std::vector<at::Tensor> tiles, sam_images, masks, fovs;
  for (Sample& sample : samples) {
    tiles.push_back(sample.tiles);
    batch.tiles_per_sample.push_back(sample.tiles.size(0));
    sam_images.push_back(sample.sam_image);
    masks.push_back(sample.mask);
    fovs.push_back(sample.fov);
    if (sample.full_mask.defined()) {
      batch.full_masks.push_back(sample.full_mask);
      batch.full_fovs.push_back(sample.full_fov);
    }
    batch.texts.push_back(std::move(sample.text));
    batch.sources.push_back(std::move(sample.source));
    batch.indices.push_back(sample.index);
    batch.seeds.push_back(sample.seed);
  }
  VT_CHECK(batch.full_masks.empty() || batch.full_masks.size() == samples.size(),
           "collate: some samples have full-resolution masks and some do not");
  batch.tiles = at::cat(tiles, 0);
  batch.sam_images = at::stack(sam_images, 0);
  batch.masks = at::stack(masks, 0);
  batch.fovs = at::stack(fovs, 0);
  return batch;
}

}  // namespace vesseltune::data
