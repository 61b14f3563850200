#include "vesseltune/setup/trained_model.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "vesseltune/core/check.h"
#include "vesseltune/core/log.h"
#include "vesseltune/text/tokenizer.h"
#include "vesseltune/checkpoint/checkpoint_store.h"
#include "vesseltune/checkpoint/optimizer_checkpoint.h"

namespace vesseltune::setup {

namespace fs = std::filesystem;

TrainedModel build_untrained_model(TrainConfig config, at::Device device, std::optional<at::ScalarType> dtype) {
  // Shapes, tokenizer (which sets the token ids) and model, as the trainer makes them.
  TrainedModel trained;
  text::Tokenizer tokenizer = run_tokenizer(config);
  trained.shapes = model_shapes(config, tokenizer);
  trained.encoder = std::make_shared<BatchEncoder>(std::move(tokenizer), trained.shapes.sa2va,
                                                   model_input_options(config, trained.shapes), config.loss.inside_fov);
  trained.device = device;
  trained.dtype = dtype ? *dtype : model_dtype(config, device);
  trained.model = build_model(trained.shapes, config, device, trained.dtype);
  trained.model->eval();
  trained.config = std::move(config);
  return trained;
}

std::string resolve_checkpoint(const std::string& path) {
  VT_CHECK(fs::exists(path), "no checkpoint at '", path, "'");
  if (!fs::is_directory(path)) return path;
  const fs::path folder = fs::exists(fs::path(path) / "checkpoints") ? fs::path(path) / "checkpoints" : fs::path(path);
  const std::vector<fs::path> found = checkpoint::CheckpointStore(folder, 1).list();
  VT_CHECK(!found.empty(), "'", path, "' holds no complete training checkpoint (step_N.h5)");
  return found.front().string();
}

TrainedModel load_trained_model(const std::string& checkpoint, const std::vector<std::string>& overrides,
                                at::Device device, std::optional<at::ScalarType> dtype) {
  const std::string file = resolve_checkpoint(checkpoint);
  std::vector<std::string> settings;
  const fs::path kept = fs::absolute(file).parent_path().parent_path() / kRunTokenizerFolder / "tokenizer.json";
  if (fs::is_regular_file(kept)) settings.push_back("model.tokenizer=" + kept.string());
  settings.insert(settings.end(), overrides.begin(), overrides.end());
  const TrainConfig config = TrainConfig::from_yaml_text(checkpoint::CheckpointStore::read_config(file), file + " (config)", settings);
  TrainedModel trained = build_untrained_model(config, device, dtype);
  const std::vector<std::string> loaded = checkpoint::load_trained_weights(file, *trained.model);
  trained.source = file;
  trained.step = checkpoint::CheckpointStore::read_state(file).step;
  VT_LOG(info) << "model " << (config.model.config_json.empty() ? config.model.preset : config.model.config_json)
               << ": " << loaded.size() << " trained tensors from " << file << " (step " << trained.step << ")";
  return trained;
}

TrainedModel load_merged_model(const std::string& folder, const std::vector<std::string>& overrides, at::Device device,
                               std::optional<at::ScalarType> dtype) {
  const fs::path config_file = fs::path(folder) / kExportedConfigName;
  VT_CHECK(fs::exists(config_file), folder, ": no ", kExportedConfigName, " (not a folder written by vesseltune-export)");
  std::vector<std::string> settings = {"model.weights=" + folder, "model.config_json=" + folder,
                                       "model.tokenizer=" + (fs::path(folder) / "tokenizer.json").string(),
                                       "model.lora.r=0"};
  settings.insert(settings.end(), overrides.begin(), overrides.end());
  TrainedModel trained = build_untrained_model(TrainConfig::load(config_file.string(), settings), device, dtype);
  trained.source = folder;
  return trained;
}

}  // namespace vesseltune::setup
