#pragma once
// A trained Sa2VA, as evaluation and export take it: from a training checkpoint (the model built exactly as the
// run built it, then the trained weights), or from merged weights written by vesseltune-export (no adapters).
// Both come with the run's config and a BatchEncoder over its tokenizer, which also sets the model's token ids.
#include <ATen/ATen.h>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include "vesseltune/setup/batch_encoder.h"
#include "vesseltune/setup/model_setup.h"
#include "vesseltune/setup/train_config.h"

namespace vesseltune::setup {

struct TrainedModel {
  TrainConfig config;  // the run's config with the caller's overrides
  ModelShapes shapes;  // token ids set from the tokenizer
  model::Sa2VAModel model{nullptr};
  std::shared_ptr<BatchEncoder> encoder;
  std::string source;  // the checkpoint file, or the merged-weights folder
  int64_t step = -1;   // training steps of the checkpoint; -1 for merged weights
  at::Device device{at::kCPU};
  at::ScalarType dtype = at::kFloat;  // the caller's, or the run's model.dtype on DEVICE (model_dtype)
};

// Name of the training config that vesseltune-export writes beside merged weights (the run's, resolved).
inline constexpr const char* kExportedConfigName = "vesseltune_config.yaml";
// The folder of WORK_DIR where a run keeps its copy of the tokenizer's files (its checkpoints name it).
inline constexpr const char* kRunTokenizerFolder = "tokenizer";

// The model CONFIG describes as the run built it before its first step (base weights from model.weights or drawn
// from the seed, LoRA adapters added), in eval mode, with its encoder: what the functions below load weights into.
TrainedModel build_untrained_model(TrainConfig config, at::Device device,
                                   std::optional<at::ScalarType> dtype = std::nullopt);

// CHECKPOINT: a training checkpoint (step_N.h5), or a work dir or its checkpoints folder (the newest complete
// checkpoint there). The run's config is the one stored in the checkpoint, with the tokenizer the run kept
// (WORK_DIR/tokenizer/, found beside the checkpoints folder even when the work dir has moved); OVERRIDES
// (`--set key=value`) change it, e.g. where the base weights (model.weights) are now. Base weights come from model.weights, or
// are the seed's random ones as in training; then LoRA, then the trained weights. Errors name the file and tensor.
TrainedModel load_trained_model(const std::string& checkpoint, const std::vector<std::string>& overrides,
                                at::Device device, std::optional<at::ScalarType> dtype = std::nullopt);

// FOLDER: merged weights from vesseltune-export (config.json, safetensors shards, tokenizer.json and
// vesseltune_config.yaml). Built without adapters, all weights from the folder.
TrainedModel load_merged_model(const std::string& folder, const std::vector<std::string>& overrides, at::Device device,
                               std::optional<at::ScalarType> dtype = std::nullopt);

// The checkpoint a path names: the file itself, or the newest complete checkpoint of a work dir / checkpoints folder.
std::string resolve_checkpoint(const std::string& path);

}  // namespace vesseltune::setup
