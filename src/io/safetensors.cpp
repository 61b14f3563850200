#include "vesseltune/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <torch/nn/module.h>

#include "vesseltune/core/atomic_file.h"
#include "vesseltune/core/check.h"

namespace vesseltune::io {

namespace fs = std::filesystem;

at::ScalarType to_scalar_type(const std::string& dtype) {
  static const std::map<std::string, at::ScalarType> types{
      {"F64", at::kDouble}, {"F32", at::kFloat}, {"F16", at::kHalf}, {"BF16", at::kBFloat16}, {"I64", at::kLong},
      {"I32", at::kInt},    {"I16", at::kShort}, {"I8", at::kChar},  {"U8", at::kByte},       {"BOOL", at::kBool}};
  const auto found = types.find(dtype);
  VT_CHECK(found != types.end(), "unsupported safetensors dtype '", dtype, "'");
  return found->second;
}

std::string to_safetensors_dtype(at::ScalarType dtype) {
  switch (dtype) {
    case at::kDouble: return "F64";
    case at::kFloat: return "F32";
    case at::kHalf: return "F16";
    case at::kBFloat16: return "BF16";
    case at::kLong: return "I64";
    case at::kInt: return "I32";
    case at::kShort: return "I16";
    case at::kChar: return "I8";
    case at::kByte: return "U8";
    case at::kBool: return "BOOL";
    default: VT_FAIL("dtype ", dtype, " has no safetensors spelling");
  }
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  VT_CHECK(fd >= 0, "cannot open '", path, "': ", std::strerror(errno));
  struct stat info {};
  if (::fstat(fd, &info) != 0) {
    ::close(fd);
    VT_FAIL("cannot stat '", path, "': ", std::strerror(errno));
  }
  size_ = static_cast<size_t>(info.st_size);
  if (size_ > 0) {
    void* mapped = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    ::close(fd);
    VT_CHECK(mapped != MAP_FAILED, "cannot map '", path, "': ", std::strerror(errno));
    mapping_ = static_cast<const uint8_t*>(mapped);
  } else {
    ::close(fd);
  }
  try {
    header_ = parse_safetensors_header(mapping_, size_, size_, path);
  } catch (...) {
    if (mapping_) ::munmap(const_cast<uint8_t*>(mapping_), size_);
    throw;
  }
  for (size_t i = 0; i < header_.entries.size(); ++i) index_[header_.entries[i].name] = i;
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_) ::munmap(const_cast<uint8_t*>(mapping_), size_);
}

std::vector<TensorInfo> SafetensorsFile::tensors() const {
  std::vector<TensorInfo> infos;
  for (const auto& entry : header_.entries) infos.push_back(TensorInfo{entry.name, to_scalar_type(entry.dtype), entry.shape});
  return infos;
}

at::Tensor SafetensorsFile::view(const std::string& name) const {
  const auto found = index_.find(name);
  VT_CHECK(found != index_.end(), path_, ": no tensor '", name, "'");
  const auto& entry = header_.entries[found->second];
  void* data = const_cast<uint8_t*>(mapping_ + header_.data_offset + entry.begin);
  // The data buffer need not be aligned for the dtype; an unaligned view would be copied element-wise by
  // at::Tensor ops anyway, which is correct on x86.
  return at::from_blob(data, entry.shape, at::TensorOptions().dtype(to_scalar_type(entry.dtype)));
}

Checkpoint::Checkpoint(const std::string& path) : path_(path) {
  std::vector<std::string> shards;
  const fs::path location(path);
  VT_CHECK(fs::exists(location), "checkpoint '", path, "' does not exist");
  if (fs::is_directory(location)) {
    const fs::path index = location / kWeightsIndexFile;
    if (fs::exists(index)) {
      nlohmann::json json;
      try {
        std::ifstream in(index);
        json = nlohmann::json::parse(in);
      } catch (const std::exception& error) {
        VT_FAIL(index.string(), ": not valid JSON: ", error.what());
      }
      VT_CHECK(json.contains("weight_map") && json["weight_map"].is_object(), index.string(), ": no 'weight_map' object");
      std::map<std::string, std::string> weight_map;
      std::set<std::string> files;
      for (const auto& [name, file] : json["weight_map"].items()) {
        VT_CHECK(file.is_string(), index.string(), ": weight_map['", name, "'] must be a file name");
        weight_map[name] = file.get<std::string>();
        files.insert(file.get<std::string>());
      }
      std::map<std::string, size_t> file_index;
      for (const auto& file : files) {
        VT_CHECK(file.find('/') == std::string::npos, index.string(), ": shard '", file, "' must be a file name in the folder");
        file_index[file] = files_.size();
        files_.push_back(std::make_unique<SafetensorsFile>((location / file).string()));
      }
      for (const auto& [name, file] : weight_map) {
        const size_t i = file_index[file];
        VT_CHECK(files_[i]->contains(name), index.string(), " lists '", name, "' in ", file, ", which does not hold it");
        location_[name] = i;
      }
      return;
    }
    const fs::path single = location / kSingleWeightsFile;
    VT_CHECK(fs::exists(single), "checkpoint folder '", path, "' has neither ", kSingleWeightsFile, " nor ", kWeightsIndexFile);
    files_.push_back(std::make_unique<SafetensorsFile>(single.string()));
  } else {
    files_.push_back(std::make_unique<SafetensorsFile>(path));
  }
  for (const auto& info : files_.front()->tensors()) location_[info.name] = 0;
}

std::vector<TensorInfo> Checkpoint::tensors() const {
  std::vector<TensorInfo> infos;
  for (const auto& [name, file] : location_) {
    for (const auto& info : files_[file]->tensors()) {
      if (info.name == name) infos.push_back(info);
    }
  }
  return infos;
}

at::Tensor Checkpoint::view(const std::string& name) const {
  const auto found = location_.find(name);
  VT_CHECK(found != location_.end(), path_, ": no tensor '", name, "'");
  return files_[found->second]->view(name);
}

namespace {

std::string shape_text(at::IntArrayRef shape) {
  std::ostringstream out;
  out << shape;
  return out.str();
}

void list_names(std::ostringstream& out, const char* what, const std::vector<std::string>& names) {
  if (names.empty()) return;
  out << "\n  " << names.size() << " " << what << ":";
  for (size_t i = 0; i < names.size() && i < 20; ++i) out << " " << names[i];
  if (names.size() > 20) out << " ...";
}

}  // namespace

std::string LoadReport::describe() const {
  std::ostringstream out;
  out << loaded.size() << " tensors loaded";
  list_names(out, "missing from the checkpoint", missing);
  list_names(out, "unexpected in the checkpoint", unexpected);
  list_names(out, "with other shapes", mismatched);
  return out.str();
}

LoadReport load_into(torch::nn::Module& module, const Checkpoint& checkpoint, const LoadOptions& options) {
  LoadReport report;
  std::set<std::string> wanted;
  at::NoGradGuard no_grad;
  auto load = [&](const std::string& key, at::Tensor target) {
    const std::string name = options.prefix + key;
    wanted.insert(name);
    if (!checkpoint.contains(name)) {
      report.missing.push_back(name);
      return;
    }
    const at::Tensor source = checkpoint.view(name);
    if (source.sizes() != target.sizes()) {
      report.mismatched.push_back(name + ": checkpoint " + shape_text(source.sizes()) + " vs model " +
                                  shape_text(target.sizes()));
      return;
    }
    target.copy_(source);  // dtype conversion and host-to-device in one copy
    report.loaded.push_back(name);
  };
  for (const auto& item : module.named_parameters(/*recurse=*/true)) load(item.key(), item.value());
  for (const auto& item : module.named_buffers(/*recurse=*/true)) load(item.key(), item.value());
  for (const auto& info : checkpoint.tensors()) {
    if (wanted.count(info.name)) continue;
    if (!options.prefix.empty() && info.name.rfind(options.prefix, 0) != 0) continue;  // another module's part
    const bool ignored = std::any_of(options.ignore_prefixes.begin(), options.ignore_prefixes.end(),
                                     [&](const std::string& p) { return info.name.rfind(p, 0) == 0; });
    if (!ignored) report.unexpected.push_back(info.name);
  }
  if (options.strict) {
    VT_CHECK(report.missing.empty() && report.unexpected.empty() && report.mismatched.empty(), "checkpoint '",
             checkpoint.path(), "' does not fit the model: ", report.describe());
  }
  return report;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<HeaderEntry> entries;
  std::vector<at::Tensor> host;
  uint64_t offset = 0;
  std::set<std::string> names;
  for (const auto& [name, tensor] : tensors) {
    VT_CHECK(names.insert(name).second, "save_safetensors('", path, "'): tensor '", name, "' given twice");
    at::Tensor contiguous = tensor.detach().to(at::kCPU).contiguous();
    HeaderEntry entry;
    entry.name = name;
    entry.dtype = to_safetensors_dtype(contiguous.scalar_type());
    entry.shape = contiguous.sizes().vec();
    entry.begin = offset;
    entry.end = offset + contiguous.nbytes();
    offset = entry.end;
    entries.push_back(std::move(entry));
    host.push_back(std::move(contiguous));
  }
  write_file_atomically(path, [&](const std::string& temporary) {
    std::ofstream out(temporary, std::ios::binary | std::ios::trunc);
    VT_CHECK(out.good(), "cannot write '", temporary, "'");
    const std::string header = make_safetensors_header(entries, metadata);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    for (const auto& tensor : host) out.write(static_cast<const char*>(tensor.data_ptr()), static_cast<std::streamsize>(tensor.nbytes()));
    out.flush();
    VT_CHECK(out.good(), "writing '", temporary, "' failed (disk full?)");
  });
}

std::string shard_file_name(size_t shard, size_t shards) {
  char name[64];
  std::snprintf(name, sizeof(name), "model-%05zu-of-%05zu.safetensors", shard, shards);
  return name;
}

std::vector<std::string> save_safetensors_sharded(const std::string& folder,
                                                  const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                                                  uint64_t max_shard_bytes,
                                                  const std::map<std::string, std::string>& metadata) {
  VT_CHECK(!tensors.empty(), "save_safetensors_sharded('", folder, "'): no tensors to write");
  VT_CHECK(max_shard_bytes > 0, "save_safetensors_sharded('", folder, "'): the shard size must be positive");
  fs::create_directories(folder);
  for (const auto& entry : fs::directory_iterator(folder)) {
    const std::string name = entry.path().filename().string();
    const bool shard = name.rfind("model-", 0) == 0 && entry.path().extension() == ".safetensors";
    VT_CHECK(!shard && name != kSingleWeightsFile && name != kWeightsIndexFile, "save_safetensors_sharded: '", folder,
             "' already holds weights (", name, "); write into an empty folder");
  }
  // save_pretrained's split: in order, a new shard when the next tensor would overflow the current one.
  std::vector<std::vector<std::pair<std::string, at::Tensor>>> shards(1);
  uint64_t shard_bytes = 0, total_bytes = 0;
  for (const auto& named : tensors) {
    const uint64_t bytes = named.second.nbytes();
    if (!shards.back().empty() && shard_bytes + bytes > max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(named);
    shard_bytes += bytes;
    total_bytes += bytes;
  }
  const fs::path location(folder);
  if (shards.size() == 1) {
    save_safetensors((location / kSingleWeightsFile).string(), tensors, metadata);
    return {kSingleWeightsFile};
  }
  std::vector<std::string> files;
  nlohmann::json weight_map = nlohmann::json::object();
  for (size_t i = 0; i < shards.size(); ++i) {
    files.push_back(shard_file_name(i + 1, shards.size()));
    save_safetensors((location / files.back()).string(), shards[i], metadata);
    for (const auto& named : shards[i]) weight_map[named.first] = files.back();
  }
  const nlohmann::json index = {{"metadata", {{"total_size", total_bytes}}}, {"weight_map", weight_map}};
  const std::string path = (location / kWeightsIndexFile).string();
  write_text_file_atomically(path, index.dump(2) + "\n");
  files.push_back(kWeightsIndexFile);
  return files;
}

}  // namespace vesseltune::io
