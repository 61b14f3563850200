#pragma once
// Random access to a packed data set (shard_format.h), the reader the trainer uses. Opening reads only the
// manifest; a shard is opened, and checked against its manifest entry (size, CRC-32, format version,
// sample groups, dataset shapes, types and storage), the first time one of its samples is read, so a rank
// opens only the shards it reads. read() may be called from several threads at once.

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "vesseltune/data/manifest.h"
#include "vesseltune/data/shard_format.h"

namespace vesseltune::data {

struct SampleLocation {
  int shard = 0;    // index into manifest().shards
  std::string key;  // group below /samples
  int height = 0;
  int width = 0;
};

class PackedDataset {
 public:
  // SPLIT "train" or "val" selects those samples (in manifest order); empty selects every sample.
  explicit PackedDataset(std::filesystem::path directory, std::string split = "");
  ~PackedDataset();
  PackedDataset(const PackedDataset&) = delete;
  PackedDataset& operator=(const PackedDataset&) = delete;

  int64_t size() const { return static_cast<int64_t>(locations_.size()); }
  const Manifest& manifest() const { return manifest_; }
  const std::filesystem::path& directory() const { return directory_; }
  const SampleLocation& location(int64_t index) const;

  // Image, mask, FOV and strings of sample INDEX; errors name the shard and the sample.
  SampleRecord read(int64_t index) const;

  // Opens and checks now, rather than at first read, the shards that hold INDICES (a rank's part).
  void validate(const std::vector<int64_t>& indices) const;
  void validate_all() const;  // every shard this view uses

 private:
  struct Shard;
  const Shard& open_shard(int shard) const;

  std::filesystem::path directory_;
  Manifest manifest_;
  std::vector<SampleLocation> locations_;
  std::vector<std::unique_ptr<Shard>> shards_;  // one per manifest shard, opened on first use
};

}  // namespace vesseltune::data
