#pragma once
// Safetensors checkpoints as released on the Hugging Face hub: one file, or shards listed in
// model.safetensors.index.json. Files are memory-mapped; tensors are copied straight from the mapping into the
// module's tensors on their device and in their dtype (load_into), without an intermediate copy.

#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "vesseltune/io/safetensors_header.h"

namespace torch::nn {
class Module;
}

namespace vesseltune::io {

struct TensorInfo {
  std::string name;
  at::ScalarType dtype;
  std::vector<int64_t> shape;
};

class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  std::vector<TensorInfo> tensors() const;
  bool contains(const std::string& name) const { return index_.count(name) > 0; }
  // A CPU tensor viewing the mapping: valid while this file is open; clone() to keep it longer.
  at::Tensor view(const std::string& name) const;
  // A CPU tensor of its own, in the stored dtype.
  at::Tensor tensor(const std::string& name) const { return view(name).clone(); }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }

 private:
  std::string path_;
  const uint8_t* mapping_ = nullptr;
  size_t size_ = 0;
  Header header_;
  std::map<std::string, size_t> index_;  // name -> entry
};

// A checkpoint: a .safetensors file, or a directory holding model.safetensors or model.safetensors.index.json.
class Checkpoint {
 public:
  explicit Checkpoint(const std::string& path);
  std::vector<TensorInfo> tensors() const;
  bool contains(const std::string& name) const { return location_.count(name) > 0; }
  at::Tensor view(const std::string& name) const;
  at::Tensor tensor(const std::string& name) const { return view(name).clone(); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> location_;  // tensor name -> file
};

struct LoadOptions {
  bool strict = true;                        // throw on missing, unexpected or mismatched names
  std::vector<std::string> ignore_prefixes;  // checkpoint tensors that are expected and unused
  std::string prefix;                        // checkpoint name = prefix + module key
};

struct LoadReport {
  std::vector<std::string> missing;     // module keys absent from the checkpoint
  std::vector<std::string> unexpected;  // checkpoint names no module key asked for (outside ignore_prefixes)
  std::vector<std::string> mismatched;  // "key: checkpoint [a, b] vs module [c, d]"
  std::vector<std::string> loaded;
  std::string describe() const;
};

// Copies every matching checkpoint tensor into the module's parameter or buffer (converted to its dtype and
// device). Throws with the names (up to 20 of each kind, and the counts) when strict and anything is off.
LoadReport load_into(torch::nn::Module& module, const Checkpoint& checkpoint, const LoadOptions& options = {});

// Writes tensors (any device; copied to the host) under a temporary name in the same folder, then renames,
// so that a crash never leaves a partial file under `path`.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Hugging Face's names for a model's weights in a folder: one file, or shards listed by an index.
inline constexpr const char* kSingleWeightsFile = "model.safetensors";
inline constexpr const char* kWeightsIndexFile = "model.safetensors.index.json";
// "model-00002-of-00003.safetensors" for shard 2 (1-based) of 3, as save_pretrained names them.
std::string shard_file_name(size_t shard, size_t shards);

// Writes tensors into FOLDER (created if needed) as save_pretrained does: model.safetensors when they fit in
// MAX_SHARD_BYTES, else shards of at most MAX_SHARD_BYTES (a larger tensor gets a shard of its own), in the given
// order, and kWeightsIndexFile {"metadata": {"total_size": bytes of the tensors}, "weight_map": {name: shard}}.
// METADATA goes into every file's header (transformers wants {"format": "pt"}). Each file is written under a
// temporary name and renamed, the index last, so the index never names a shard that is not complete. FOLDER must
// not hold weights of an earlier save (a mix of two would read as one). Returns the file names, the index last.
std::vector<std::string> save_safetensors_sharded(const std::string& folder,
                                                  const std::vector<std::pair<std::string, at::Tensor>>& tensors,
                                                  uint64_t max_shard_bytes,
                                                  const std::map<std::string, std::string>& metadata = {});

at::ScalarType to_scalar_type(const std::string& safetensors_dtype);
std::string to_safetensors_dtype(at::ScalarType dtype);

}  // namespace vesseltune::io
