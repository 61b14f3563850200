#pragma once
// The packed data set on disk (docs/data_format.md): a directory with manifest.json and HDF5 shards
// "<split>-NNNNN.h5"; in each shard a group /samples/<key> per sample holding the datasets image (H×W×3),
// mask (H×W, 0/1) and fov (H×W, 0/1), uint8, each one deflate-compressed chunk, and the sample's strings
// as attributes. Plain HDF5 types only, so that h5py reads it without this project.

#include <string>
#include <vector>

#include "vesseltune/data/image.h"

namespace vesseltune::data {

// Bumped whenever a reader of the old format would misread the new one.
inline constexpr int kFormatVersion = 1;
inline constexpr const char* kShardFormat = "vesseltune-shard";
inline constexpr const char* kManifestFile = "manifest.json";
inline constexpr const char* kDefaultText = "blood vessels";
// On every image/mask/fov dataset: the content hash (io/content_hash.h) of its stored chunk, as an int64 bit pattern.
// Optional: shards packed before it existed have none and are read as they are.
inline constexpr const char* kChunkHashAttribute = "xxh64";

// One sample as stored: the image at native resolution and its aligned masks, with where it came from.
struct SampleRecord {
  Image image;  // H×W×3
  Image mask;   // H×W×1, 1 = vessel
  Image fov;    // H×W×1, 1 = inside the field of view (all ones when the data set has none)
  std::vector<std::string> texts;  // referring expressions, e.g. "blood vessels"
  std::string source;              // the image file it was made from (or "synthetic:<style>:<index>")
  std::string dataset;             // DRIVE, STARE, ..., synthetic
  std::string split;               // train or val
  int original_height = 0;         // size of the source image before any packing step
  int original_width = 0;
};

// Shard file name for the n-th shard of a split: "train-00003.h5".
std::string shard_file_name(const std::string& split, int index);

}  // namespace vesseltune::data
