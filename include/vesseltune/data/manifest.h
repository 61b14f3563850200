#pragma once
// manifest.json of a packed data set: what every shard must hold (sample keys and sizes), its size and
// checksum, the format version and the command that made it. The reader checks each shard against its
// entry before using it.

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace vesseltune::data {

struct ManifestSample {
  std::string key;  // group name below /samples in the shard
  int height = 0;
  int width = 0;
};

struct ManifestShard {
  std::string file;   // relative to the data set directory
  std::string split;  // every sample of a shard belongs to one split
  uint64_t bytes = 0;
  std::string crc32;  // file_crc32 as crc32_hex
  std::vector<ManifestSample> samples;
};

struct Manifest {
  int format_version = 0;
  std::string command;     // the vesseltune-pack command line that made the set
  std::string created_at;  // UTC, ISO 8601
  std::vector<ManifestShard> shards;

  // Sample count per split ("train", "val").
  std::map<std::string, int64_t> split_counts() const;
};

// Reads DIRECTORY/manifest.json; errors name the file and the field.
Manifest read_manifest(const std::filesystem::path& directory);

void write_manifest(const Manifest& manifest, const std::filesystem::path& file);

}  // namespace vesseltune::data
