#pragma once
// The images vesseltune-eval runs on, read one at a time (each rank reads only its own):
//   packed shards (a vesseltune-pack folder: one split or all), every sample with its mask and FOV;
//   a folder in one of vesseltune-pack's layouts (DRIVE, STARE, CHASE_DB1, HRF, FIVES, generic images/ + masks/
//     (+ fov/): data/layout.h), every image with its mask and FOV, read and checked as the packer reads them;
//   a plain folder of images: no ground truth, so the masks are predicted and nothing is scored.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>
#include "vesseltune/data/layout.h"
#include "vesseltune/data/packed_dataset.h"

namespace vesseltune::eval {

struct EvalImage {
  std::string name;           // unique in the source, usable as a file name: the source path, '/' → '_'
  data::SampleRecord record;  // image, mask (all zeros when unlabelled), FOV (all ones when none)
};

class ImageSource {
 public:
  // PATH: a packed folder (manifest.json; SPLIT "train", "val" or "" for all) or an image folder (SPLIT unused;
  // LAYOUT: a layout name, or "" to detect it; a folder that no layout matches but that holds image files is read
  // as plain images). MASK_THRESHOLD as vesseltune-pack's --mask-threshold. Errors name the path.
  ImageSource(const std::filesystem::path& path, const std::string& split, const std::string& layout,
              int mask_threshold);
  int64_t size() const;
  bool labelled() const { return labelled_; }
  EvalImage read(int64_t index) const;  // errors name the file (or the shard and sample)
  const std::string& description() const { return description_; }

 private:
  std::shared_ptr<const data::PackedDataset> packed_;
  std::vector<data::SourceItem> items_;
  std::filesystem::path base_;
  std::string dataset_;
  int mask_threshold_ = 0;
  bool labelled_ = true;
  std::string description_;
};

// A source path as a file name: extension dropped, every character but letters, digits, '-', '_' and '.'
// replaced by '_' ("training/images/21_training.tif" → "training_images_21_training").
std::string file_name_for(const std::string& source);

}  // namespace vesseltune::eval
