#include "vesseltune/data/shard_writer.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "vesseltune/io/content_hash.h"
#include "vesseltune/io/hdf5.h"
#include "vesseltune/core/atomic_file.h"
#include "vesseltune/core/check.h"
#include "vesseltune/core/log.h"
#include "vesseltune/core/remove_tree.h"
#include "vesseltune/data/checksum.h"
#include "vesseltune/data/zlib_stream.h"

namespace vesseltune::data {

namespace fs = std::filesystem;
using io::hdf5::Handle;

std::string shard_file_name(const std::string& split, int index) {
  char name[64];
  std::snprintf(name, sizeof name, "-%05d.h5", index);
  return split + name;
}

namespace {

void check_binary(const Image& plane, const char* what, const std::string& source) {
  for (uint8_t v : plane.pixels) {
    VT_CHECK(v <= 1, source, ": ", what, " holds the value ", int(v), "; it must be 0 or 1 when packed");
  }
}

std::string utc_now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm parts{};
  gmtime_r(&now, &parts);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

// One dataset of DIMS uint8 values stored as a single chunk, written as is: deflated at LEVEL, or without a
// filter at level 0; its attribute "xxh64" is the content hash of the stored chunk (readers check it).
void write_chunk_dataset(hid_t group, const char* name, const std::vector<hsize_t>& dims,
                         const std::vector<uint8_t>& chunk, int level, const std::string& where) {
  Handle space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), H5Sclose);
  Handle properties(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
  H5Pset_chunk(properties.get(), static_cast<int>(dims.size()), dims.data());
  if (level > 0) H5Pset_deflate(properties.get(), static_cast<unsigned>(level));
  Handle dataset(H5Dcreate2(group, name, H5T_STD_U8LE, space.get(), H5P_DEFAULT, properties.get(), H5P_DEFAULT),
                 H5Dclose);
  VT_CHECK(dataset.valid(), where, ": cannot create dataset '", name, "'");
  const std::vector<hsize_t> origin(dims.size(), 0);
  VT_CHECK(H5Dwrite_chunk(dataset.get(), H5P_DEFAULT, 0, origin.data(), chunk.size(), chunk.data()) >= 0,
           where, ": cannot write dataset '", name, "'");
  io::hdf5::write_int_attribute(dataset.get(), kChunkHashAttribute,
                                {static_cast<int64_t>(io::content_hash(chunk.data(), chunk.size()))});
}

}  // namespace

EncodedSample encode_sample(const SampleRecord& record, int image_level, int mask_level) {
  const Image& image = record.image;
  VT_CHECK(image.height > 0 && image.width > 0 && image.channels == 3, record.source, ": image must be H×W×3, got ",
           image.height, "x", image.width, "x", image.channels);
  for (const auto& [plane, what] : {std::pair{&record.mask, "mask"}, std::pair{&record.fov, "FOV"}}) {
    VT_CHECK(plane->height == image.height && plane->width == image.width && plane->channels == 1, record.source,
             ": ", what, " is ", plane->height, "x", plane->width, "x", plane->channels, " but the image is ",
             image.height, "x", image.width);
    check_binary(*plane, what, record.source);
  }
  for (const int level : {image_level, mask_level}) {
    VT_CHECK(level >= 0 && level <= 9, "compression level must be 0..9, got ", level);
  }
  VT_CHECK(record.split == "train" || record.split == "val", record.source, ": split must be train or val, got '",
           record.split, "'");
  EncodedSample encoded;
  encoded.height = image.height;
  encoded.width = image.width;
  auto encode = [](const std::vector<uint8_t>& pixels, int level) {
    return level == 0 ? pixels : zlib_compress(pixels, level);
  };
  encoded.image = encode(image.pixels, image_level);
  encoded.mask = encode(record.mask.pixels, mask_level);
  encoded.fov = encode(record.fov.pixels, mask_level);
  encoded.texts = record.texts.empty() ? std::vector<std::string>{kDefaultText} : record.texts;
  encoded.source = record.source;
  encoded.dataset = record.dataset;
  encoded.split = record.split;
  encoded.original_height = record.original_height > 0 ? record.original_height : image.height;
  encoded.original_width = record.original_width > 0 ? record.original_width : image.width;
  return encoded;
}

struct ShardSetWriter::OpenShard {
  Handle file;
  Handle samples;  // the /samples group
  ManifestShard entry;
  fs::path path;
};

namespace {

// OUT.partial-HOST-PID: where a pack on HOST writes until it renames the folder into place.
std::string partial_prefix(const fs::path& out_dir) {
  char host[256] = {0};
  ::gethostname(host, sizeof(host) - 1);
  return out_dir.filename().string() + ".partial-" + host + "-";
}

// The partial folders of packs on this host that were killed (their process is gone): never complete, never read.
// Those of other hosts (a shared file system) are left alone: their processes cannot be seen from here.
void remove_stale_partials(const fs::path& out_dir) {
  const fs::path parent = out_dir.parent_path().empty() ? fs::path(".") : out_dir.parent_path();
  const std::string prefix = partial_prefix(out_dir);
  for (const auto& entry : fs::directory_iterator(parent)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0 || !entry.is_directory()) continue;
    const std::string pid = name.substr(prefix.size());
    if (pid.empty() || pid.size() > 9 || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    if (::kill(static_cast<pid_t>(std::stol(pid)), 0) == 0 || errno != ESRCH) continue;  // still packing
    VT_CHECK(remove_tree(entry.path().string()), "cannot remove the stale ", entry.path().string());
    VT_LOG(info) << "removed " << entry.path().string() << ", left by a pack that did not finish";
  }
}

}  // namespace

ShardSetWriter::ShardSetWriter(fs::path out_dir, ShardSetOptions options)
    : out_dir_(std::move(out_dir)), options_(std::move(options)) {
  io::hdf5::silence_errors();
  VT_CHECK(options_.samples_per_shard > 0, "samples per shard must be positive, got ", options_.samples_per_shard);
  VT_CHECK(options_.overwrite || !fs::exists(out_dir_), out_dir_.string(),
           " already exists; remove it, choose another output directory or pass --overwrite");
  if (!out_dir_.parent_path().empty()) fs::create_directories(out_dir_.parent_path());
  remove_stale_partials(out_dir_);
  partial_dir_ = out_dir_.parent_path() / (partial_prefix(out_dir_) + std::to_string(::getpid()));
  VT_CHECK(remove_tree(partial_dir_.string()), "cannot remove ", partial_dir_.string());
  fs::create_directories(partial_dir_);
  manifest_.format_version = kFormatVersion;
  manifest_.command = options_.command;
}

ShardSetWriter::~ShardSetWriter() {
  if (finished_) return;
  open_.clear();
  remove_tree(partial_dir_.string());
}

void ShardSetWriter::add(const EncodedSample& sample) {
  VT_CHECK(!finished_, "ShardSetWriter::add after finish");
  const auto full = open_.find(sample.split);
  if (full != open_.end() && static_cast<int>(full->second->entry.samples.size()) == options_.samples_per_shard) {
    close_shard(sample.split);
  }
  std::unique_ptr<OpenShard>& shard = open_[sample.split];
  if (!shard) {
    shard = std::make_unique<OpenShard>();
    shard->entry.file = shard_file_name(sample.split, next_shard_index_[sample.split]++);
    shard->entry.split = sample.split;
    shard->path = partial_dir_ / shard->entry.file;
    shard->file = Handle(H5Fcreate(shard->path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    VT_CHECK(shard->file.valid(), "cannot create shard ", shard->path.string());
    shard->samples = Handle(H5Gcreate2(shard->file.get(), "samples", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    VT_CHECK(shard->samples.valid(), shard->path.string(), ": cannot create group /samples");
  }
  char key[16];
  std::snprintf(key, sizeof key, "%05zu", shard->entry.samples.size());
  const std::string where = shard->path.string() + " sample " + key;
  Handle group(H5Gcreate2(shard->samples.get(), key, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
  VT_CHECK(group.valid(), where, ": cannot create group");
  const auto h = static_cast<hsize_t>(sample.height), w = static_cast<hsize_t>(sample.width);
  write_chunk_dataset(group.get(), "image", {h, w, 3}, sample.image, options_.image_compression_level, where);
  write_chunk_dataset(group.get(), "mask", {h, w}, sample.mask, options_.compression_level, where);
  write_chunk_dataset(group.get(), "fov", {h, w}, sample.fov, options_.compression_level, where);
  io::hdf5::write_string_list_attribute(group.get(), "texts", sample.texts);
  io::hdf5::write_string_attribute(group.get(), "source", sample.source);
  io::hdf5::write_string_attribute(group.get(), "dataset", sample.dataset);
  io::hdf5::write_string_attribute(group.get(), "split", sample.split);
  io::hdf5::write_int_attribute(group.get(), "original_size", {sample.original_height, sample.original_width});
  shard->entry.samples.push_back({key, sample.height, sample.width});
}

void ShardSetWriter::close_shard(std::string split) {
  std::unique_ptr<OpenShard> shard = std::move(open_.at(split));
  open_.erase(split);
  io::hdf5::write_string_attribute(shard->file.get(), "format", kShardFormat);
  io::hdf5::write_int_attribute(shard->file.get(), "format_version", {kFormatVersion});
  io::hdf5::write_string_attribute(shard->file.get(), "split", split);
  io::hdf5::write_int_attribute(shard->file.get(), "num_samples", {static_cast<int64_t>(shard->entry.samples.size())});
  shard->samples.reset();
  VT_CHECK(shard->file.close(), "cannot close shard ", shard->path.string());
  shard->entry.bytes = fs::file_size(shard->path);
  shard->entry.crc32 = crc32_hex(file_crc32(shard->path));
  manifest_.shards.push_back(std::move(shard->entry));
}

Manifest ShardSetWriter::finish() {
  VT_CHECK(!finished_, "ShardSetWriter::finish called twice");
  while (!open_.empty()) close_shard(open_.begin()->first);
  VT_CHECK(!manifest_.shards.empty(), "no samples were packed; nothing written to ", out_dir_.string());
  manifest_.created_at = utc_now();
  write_manifest(manifest_, partial_dir_ / kManifestFile);
  // Only now does OUT appear, complete; an older set is replaced only after the new one is whole.
  move_folder_into_place(partial_dir_.string(), out_dir_.string());
  finished_ = true;
  return manifest_;
}

}  // namespace vesseltune::data
