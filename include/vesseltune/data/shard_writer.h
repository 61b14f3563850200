#pragma once
// Writes a packed data set (shard_format.h). Pixels are deflated by encode_sample in the caller's threads,
// so compression runs in parallel; ShardSetWriter only stores the finished chunks. Everything goes into
// "<OUT>.partial-<pid>" and is renamed to OUT by finish(): a run that fails or is killed never leaves a
// directory that looks like a complete set.

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "vesseltune/data/manifest.h"
#include "vesseltune/data/shard_format.h"

namespace vesseltune::data {

// A sample whose image, mask and FOV are already deflate streams (zlib format, as HDF5's deflate filter
// stores them).
struct EncodedSample {
  int height = 0;
  int width = 0;
  std::vector<uint8_t> image;  // deflated H×W×3
  std::vector<uint8_t> mask;   // deflated H×W
  std::vector<uint8_t> fov;    // deflated H×W
  std::vector<std::string> texts;
  std::string source;
  std::string dataset;
  std::string split;
  int original_height = 0;
  int original_width = 0;
};

// Checks the record's shapes and values (image H×W×3, mask and FOV H×W of 0/1) and compresses it: the image at
// IMAGE_LEVEL, mask and FOV at MASK_LEVEL (deflate 1..9, 0 = stored).
EncodedSample encode_sample(const SampleRecord& record, int image_level, int mask_level);

struct ShardSetOptions {
  int samples_per_shard = 64;
  // Deflate levels 1..9, 0 = stored; only recorded here, encode_sample applies them.
  int compression_level = 4;        // mask and FOV: they shrink 20-50× and inflate fast
  int image_compression_level = 0;  // images: stored, so that reading needs no inflation (deflate would take a
                                    // third of the reader's CPU per large fundus image, for about half the disk)
  std::string command;        // recorded in the manifest
  bool overwrite = false;     // replace an existing OUT (only once the new set is complete)
};

class ShardSetWriter {
 public:
  ShardSetWriter(std::filesystem::path out_dir, ShardSetOptions options);
  ~ShardSetWriter();  // removes the partial directory unless finish() ran
  ShardSetWriter(const ShardSetWriter&) = delete;
  ShardSetWriter& operator=(const ShardSetWriter&) = delete;

  // Appends the sample to the open shard of its split, starting a new shard when that one is full.
  void add(const EncodedSample& sample);

  // Closes the shards, writes their sizes and checksums into manifest.json, moves the set to OUT.
  Manifest finish();

  const std::filesystem::path& partial_dir() const { return partial_dir_; }

 private:
  struct OpenShard;
  void close_shard(std::string split);  // by value: callers pass a key of open_, which this erases

  std::filesystem::path out_dir_;
  std::filesystem::path partial_dir_;
  ShardSetOptions options_;
  Manifest manifest_;
  std::map<std::string, std::unique_ptr<OpenShard>> open_;  // by split
  std::map<std::string, int> next_shard_index_;             // by split
  bool finished_ = false;
};

}  // namespace vesseltune::data
