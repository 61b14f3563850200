#include "vesseltune/data/packed_dataset.h"

#include <mutex>

#include "vesseltune/core/check.h"
#include "vesseltune/data/checksum.h"
#include "vesseltune/data/shard_format.h"
#include "vesseltune/io/content_hash.h"
#include "vesseltune/io/hdf5.h"
#include "vesseltune/data/zlib_stream.h"

namespace vesseltune::data {

namespace fs = std::filesystem;
using io::hdf5::Handle;

struct PackedDataset::Shard {
  std::once_flag opened;
  fs::path path;
  Handle file;
};

namespace {

// Checks one dataset of a sample group against the shape the manifest gives; returns it open.
Handle open_checked_dataset(hid_t group, const char* name, const std::vector<hsize_t>& expected,
                            const std::string& where) {
  VT_CHECK(H5Lexists(group, name, H5P_DEFAULT) > 0, where, ": dataset '", name, "' is missing");
  Handle dataset(H5Dopen2(group, name, H5P_DEFAULT), H5Dclose);
  VT_CHECK(dataset.valid(), where, ": cannot open dataset '", name, "'");
  Handle type(H5Dget_type(dataset.get()), H5Tclose);
  VT_CHECK(H5Tget_class(type.get()) == H5T_INTEGER && H5Tget_size(type.get()) == 1 &&
               H5Tget_sign(type.get()) == H5T_SGN_NONE,
           where, ": dataset '", name, "' is not uint8");
  Handle space(H5Dget_space(dataset.get()), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  std::vector<hsize_t> dims(rank > 0 ? rank : 0);
  if (rank > 0) H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  auto shape = [](const std::vector<hsize_t>& d) {
    std::string text;
    for (size_t i = 0; i < d.size(); ++i) text += (i ? "x" : "") + std::to_string(d[i]);
    return text.empty() ? std::string("scalar") : text;
  };
  VT_CHECK(dims == expected, where, ": dataset '", name, "' has shape ", shape(dims), " but the manifest says ",
           shape(expected));
  // The reader takes each dataset as one chunk, deflated or stored (how vesseltune-pack writes it).
  Handle properties(H5Dget_create_plist(dataset.get()), H5Pclose);
  std::vector<hsize_t> chunk(expected.size());
  VT_CHECK(H5Pget_layout(properties.get()) == H5D_CHUNKED &&
               H5Pget_chunk(properties.get(), static_cast<int>(chunk.size()), chunk.data()) == rank && chunk == dims,
           where, ": dataset '", name, "' is not stored as one chunk");
  unsigned flags = 0;
  size_t count = 0;
  const int filters = H5Pget_nfilters(properties.get());
  VT_CHECK(filters == 0 || (filters == 1 && H5Pget_filter2(properties.get(), 0, &flags, &count, nullptr, 0, nullptr,
                                                           nullptr) == H5Z_FILTER_DEFLATE),
           where, ": dataset '", name, "' is neither stored nor deflate-compressed");
  return dataset;
}

// Reads the dataset's single chunk and, when it is deflated, inflates it into exactly BYTES bytes, outside
// HDF5's lock.
std::vector<uint8_t> read_chunk(hid_t dataset, size_t rank, size_t bytes, const std::string& where,
                                const char* name) {
  const std::vector<hsize_t> origin(rank, 0);
  hsize_t stored = 0;
  VT_CHECK(H5Dget_chunk_storage_size(dataset, origin.data(), &stored) >= 0 && stored > 0, where, ": dataset '", name,
           "' has no data");
  std::vector<uint8_t> raw(stored);
  uint32_t skipped_filters = 0;
  VT_CHECK(H5Dread_chunk(dataset, H5P_DEFAULT, origin.data(), &skipped_filters, raw.data()) >= 0, where,
           ": cannot read dataset '", name, "'");
  std::vector<int64_t> hash;  // absent in shards packed before content hashes: those are read as they are
  if (io::hdf5::read_int_attribute(dataset, kChunkHashAttribute, hash)) {
    VT_CHECK(hash.size() == 1 && static_cast<uint64_t>(hash[0]) == io::content_hash(raw.data(), raw.size()), where,
             ": dataset '", name, "' does not match the content hash written with it (damaged since it was packed)");
  }
  Handle properties(H5Dget_create_plist(dataset), H5Pclose);
  // Stored without a filter (images by default, --compression 0), or HDF5 skipped the deflate filter for this chunk.
  if (H5Pget_nfilters(properties.get()) == 0 || (skipped_filters & 1u)) {
    VT_CHECK(raw.size() == bytes, where, ": dataset '", name, "' holds ", raw.size(), " bytes, expected ", bytes);
    return raw;
  }
  std::vector<uint8_t> pixels(bytes);
  VT_CHECK(zlib_decompress(raw.data(), raw.size(), pixels.data(), bytes), where, ": dataset '", name,
           "' does not inflate to ", bytes, " bytes (corrupt)");
  return pixels;
}

}  // namespace

PackedDataset::PackedDataset(fs::path directory, std::string split)
    : directory_(std::move(directory)), manifest_(read_manifest(directory_)) {
  io::hdf5::silence_errors();
  VT_CHECK(split.empty() || split == "train" || split == "val", "unknown split '", split, "' (train or val)");
  for (size_t s = 0; s < manifest_.shards.size(); ++s) {
    auto shard = std::make_unique<Shard>();
    shard->path = directory_ / manifest_.shards[s].file;
    shards_.push_back(std::move(shard));
    if (!split.empty() && manifest_.shards[s].split != split) continue;
    for (const ManifestSample& sample : manifest_.shards[s].samples) {
      locations_.push_back({static_cast<int>(s), sample.key, sample.height, sample.width});
    }
  }
  VT_CHECK(!locations_.empty(), directory_.string(), ": no samples", split.empty() ? "" : " in split '", split,
           split.empty() ? "" : "'");
}

PackedDataset::~PackedDataset() = default;

const SampleLocation& PackedDataset::location(int64_t index) const {
  VT_CHECK(index >= 0 && index < size(), "sample index ", index, " out of range [0, ", size(), ")");
  return locations_[static_cast<size_t>(index)];
}

const PackedDataset::Shard& PackedDataset::open_shard(int index) const {
  Shard& shard = *shards_[static_cast<size_t>(index)];
  std::call_once(shard.opened, [&] {
    const ManifestShard& entry = manifest_.shards[static_cast<size_t>(index)];
    const std::string where = "shard " + shard.path.string();
    VT_CHECK(fs::exists(shard.path), where, ": file is missing");
    const uint64_t bytes = fs::file_size(shard.path);
    VT_CHECK(bytes == entry.bytes, where, ": ", bytes, " bytes but the manifest says ", entry.bytes);
    const std::string crc = crc32_hex(file_crc32(shard.path));
    VT_CHECK(crc == entry.crc32, where, ": checksum ", crc, " does not match the manifest's ", entry.crc32,
             " (file changed or corrupt)");
    Handle file(H5Fopen(shard.path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), H5Fclose);
    VT_CHECK(file.valid(), where, ": not a readable HDF5 file");
    std::string format, split;
    std::vector<int64_t> version, count;
    VT_CHECK(io::hdf5::read_string_attribute(file.get(), "format", format) && format == kShardFormat, where,
             ": not a vesseltune shard (attribute 'format' is '", format, "')");
    VT_CHECK(io::hdf5::read_int_attribute(file.get(), "format_version", version) && version.size() == 1, where,
             ": attribute 'format_version' is missing");
    VT_CHECK(version[0] == kFormatVersion, where, ": format version ", version[0], " is unknown to this reader (",
             kFormatVersion, ")");
    VT_CHECK(io::hdf5::read_string_attribute(file.get(), "split", split) && split == entry.split, where, ": split '",
             split, "' but the manifest says '", entry.split, "'");
    VT_CHECK(io::hdf5::read_int_attribute(file.get(), "num_samples", count) && count.size() == 1 &&
                 count[0] == static_cast<int64_t>(entry.samples.size()),
             where, ": attribute 'num_samples' does not match the manifest's ", entry.samples.size());
    for (const ManifestSample& sample : entry.samples) {
      const std::string sample_where = where + " sample " + sample.key;
      const std::string group_path = "samples/" + sample.key;
      VT_CHECK(H5Lexists(file.get(), "samples", H5P_DEFAULT) > 0 &&
                   H5Lexists(file.get(), group_path.c_str(), H5P_DEFAULT) > 0,
               sample_where, ": group /", group_path, " is missing");
      Handle group(H5Gopen2(file.get(), group_path.c_str(), H5P_DEFAULT), H5Gclose);
      const auto h = static_cast<hsize_t>(sample.height), w = static_cast<hsize_t>(sample.width);
      open_checked_dataset(group.get(), "image", {h, w, 3}, sample_where);
      open_checked_dataset(group.get(), "mask", {h, w}, sample_where);
      open_checked_dataset(group.get(), "fov", {h, w}, sample_where);
    }
    shard.file = std::move(file);
  });
  return shard;
}

void PackedDataset::validate(const std::vector<int64_t>& indices) const {
  std::vector<bool> used(shards_.size(), false);
  for (int64_t index : indices) used[static_cast<size_t>(location(index).shard)] = true;
  for (size_t s = 0; s < used.size(); ++s) {
    if (used[s]) open_shard(static_cast<int>(s));
  }
}

void PackedDataset::validate_all() const {
  std::vector<int64_t> all(static_cast<size_t>(size()));
  for (int64_t i = 0; i < size(); ++i) all[static_cast<size_t>(i)] = i;
  validate(all);
}

SampleRecord PackedDataset::read(int64_t index) const {
  const SampleLocation& where_in = location(index);
  const Shard& shard = open_shard(where_in.shard);
  const std::string where = "shard " + shard.path.string() + " sample " + where_in.key;
  Handle group(H5Gopen2(shard.file.get(), ("samples/" + where_in.key).c_str(), H5P_DEFAULT), H5Gclose);
  VT_CHECK(group.valid(), where, ": cannot open the sample group");
  SampleRecord record;
  const int h = where_in.height, w = where_in.width;
  auto plane = [&](const char* name, int channels, size_t rank) {
    Handle dataset(H5Dopen2(group.get(), name, H5P_DEFAULT), H5Dclose);
    VT_CHECK(dataset.valid(), where, ": cannot open dataset '", name, "'");
    Image image;
    image.height = h;
    image.width = w;
    image.channels = channels;
    image.pixels = read_chunk(dataset.get(), rank, static_cast<size_t>(h) * w * channels, where, name);
    return image;
  };
  record.image = plane("image", 3, 3);
  record.mask = plane("mask", 1, 2);
  record.fov = plane("fov", 1, 2);
  for (const auto& [image, name] : {std::pair{&record.mask, "mask"}, std::pair{&record.fov, "fov"}}) {
    uint8_t any_bits = 0;  // all values are 0 or 1 exactly when their OR is (one vectorised pass)
    for (uint8_t v : image->pixels) any_bits |= v;
    if (any_bits <= 1) continue;
    for (uint8_t v : image->pixels) VT_CHECK(v <= 1, where, ": ", name, " holds ", int(v), "; only 0 and 1 are allowed");
  }
  std::vector<int64_t> original;
  VT_CHECK(io::hdf5::read_string_list_attribute(group.get(), "texts", record.texts) && !record.texts.empty(), where,
           ": attribute 'texts' is missing or empty");
  VT_CHECK(io::hdf5::read_string_attribute(group.get(), "source", record.source), where, ": attribute 'source' is missing");
  VT_CHECK(io::hdf5::read_string_attribute(group.get(), "dataset", record.dataset), where,
           ": attribute 'dataset' is missing");
  VT_CHECK(io::hdf5::read_string_attribute(group.get(), "split", record.split), where, ": attribute 'split' is missing");
  VT_CHECK(io::hdf5::read_int_attribute(group.get(), "original_size", original) && original.size() == 2, where,
           ": attribute 'original_size' is missing");
  record.original_height = static_cast<int>(original[0]);
  record.original_width = static_cast<int>(original[1]);
  return record;
}

}  // namespace vesseltune::data
