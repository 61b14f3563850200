#include "vesseltune/data/manifest.h"

#include <fstream>
#include <nlohmann/json.hpp>

#include "vesseltune/core/check.h"
#include "vesseltune/data/shard_format.h"

namespace vesseltune::data {

using nlohmann::json;

std::map<std::string, int64_t> Manifest::split_counts() const {
  std::map<std::string, int64_t> counts;
  for (const ManifestShard& shard : shards) counts[shard.split] += static_cast<int64_t>(shard.samples.size());
  return counts;
}

namespace {

// Field access that names the file and the field when the manifest is not what we wrote.
template <typename T>
T field(const json& object, const char* name, const std::string& where) {
  VT_CHECK(object.is_object() && object.contains(name), where, ": missing field '", name, "'");
  try {
    return object.at(name).get<T>();
  } catch (const json::exception& e) {
    VT_FAIL(where, ": field '", name, "' has the wrong type (", e.what(), ")");
  }
}

}  // namespace

Manifest read_manifest(const std::filesystem::path& directory) {
  const std::filesystem::path file = directory / kManifestFile;
  std::ifstream in(file);
  VT_CHECK(in, "no packed data set at ", directory.string(), ": cannot open ", file.string(),
           " (make one with vesseltune-pack)");
  json root;
  try {
    root = json::parse(in);
  } catch (const json::exception& e) {
    VT_FAIL(file.string(), ": not valid JSON (", e.what(), ")");
  }
  const std::string where = file.string();
  VT_CHECK(field<std::string>(root, "format", where) == kShardFormat, where, ": format is not '", kShardFormat, "'");
  Manifest manifest;
  manifest.format_version = field<int>(root, "format_version", where);
  VT_CHECK(manifest.format_version == kFormatVersion, where, ": format version ", manifest.format_version,
           " is not the version this reader knows (", kFormatVersion, ")");
  manifest.command = field<std::string>(root, "command", where);
  manifest.created_at = field<std::string>(root, "created_at", where);
  const json shards = field<json>(root, "shards", where);
  VT_CHECK(shards.is_array(), where, ": field 'shards' is not a list");
  for (size_t s = 0; s < shards.size(); ++s) {
    const std::string shard_where = where + " shards[" + std::to_string(s) + "]";
    ManifestShard shard;
    shard.file = field<std::string>(shards[s], "file", shard_where);
    shard.split = field<std::string>(shards[s], "split", shard_where);
    shard.bytes = field<uint64_t>(shards[s], "bytes", shard_where);
    shard.crc32 = field<std::string>(shards[s], "crc32", shard_where);
    VT_CHECK(shard.file.find('/') == std::string::npos && shard.file.find("..") == std::string::npos, shard_where,
             ": file '", shard.file, "' must be a plain name inside the data set directory");
    const json samples = field<json>(shards[s], "samples", shard_where);
    VT_CHECK(samples.is_array() && !samples.empty(), shard_where, ": field 'samples' must be a non-empty list");
    for (size_t i = 0; i < samples.size(); ++i) {
      const std::string sample_where = shard_where + " samples[" + std::to_string(i) + "]";
      ManifestSample sample;
      sample.key = field<std::string>(samples[i], "key", sample_where);
      sample.height = field<int>(samples[i], "height", sample_where);
      sample.width = field<int>(samples[i], "width", sample_where);
      VT_CHECK(sample.height > 0 && sample.width > 0, sample_where, ": size ", sample.height, "x", sample.width,
               " is not positive");
      shard.samples.push_back(sample);
    }
    manifest.shards.push_back(std::move(shard));
  }
  // The per-split counts are written for people; they must agree with the shard list.
  const json splits = field<json>(root, "splits", where);
  for (const auto& [split, count] : manifest.split_counts()) {
    VT_CHECK(splits.contains(split) && splits.at(split).get<int64_t>() == count, where, ": 'splits' says ",
             splits.contains(split) ? splits.at(split).dump() : std::string("nothing"), " for split '", split,
             "' but the shards hold ", count);
  }
  return manifest;
}

void write_manifest(const Manifest& manifest, const std::filesystem::path& file) {
  json root;
  root["format"] = kShardFormat;
  root["format_version"] = manifest.format_version;
  root["command"] = manifest.command;
  root["created_at"] = manifest.created_at;
  json splits = json::object();
  int64_t total = 0;
  for (const auto& [split, count] : manifest.split_counts()) {
    splits[split] = count;
    total += count;
  }
  root["splits"] = splits;
  root["num_samples"] = total;
  json shards = json::array();
  for (const ManifestShard& shard : manifest.shards) {
    json samples = json::array();
    for (const ManifestSample& sample : shard.samples) {
      samples.push_back({{"key", sample.key}, {"height", sample.height}, {"width", sample.width}});
    }
    shards.push_back({{"file", shard.file},
                      {"split", shard.split},
                      {"bytes", shard.bytes},
                      {"crc32", shard.crc32},
                      {"num_samples", shard.samples.size()},
                      {"samples", samples}});
  }
  root["shards"] = shards;
  std::ofstream out(file);
  VT_CHECK(out, "cannot write ", file.string());
  out << root.dump(1) << "\n";
  VT_CHECK(out.good(), "error writing ", file.string());
}

}  // namespace vesseltune::data
