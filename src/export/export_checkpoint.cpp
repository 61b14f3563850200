#include "vesseltune/export/export_checkpoint.h"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <map>

#include "vesseltune/core/atomic_file.h"
#include "vesseltune/core/check.h"
#include "vesseltune/core/log.h"
#include "vesseltune/export/merged_weights.h"
#include "vesseltune/export/model_files.h"
#include "vesseltune/export/output_folder.h"
#include "vesseltune/export/trained_modules.h"
#include "vesseltune/io/safetensors.h"
#include "vesseltune/model/peft_adapter.h"
#include "vesseltune/text/tokenizer_files.h"
#include "vesseltune/setup/trained_model.h"

namespace vesseltune::exporting {
namespace {

namespace fs = std::filesystem;

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// transformers wants it in every safetensors header ("pt": PyTorch tensors).
const std::map<std::string, std::string> kMetadata = {{"format", "pt"}};

// config.json's dtype: the one that holds most of the weights' bytes.
std::string config_dtype(const NamedTensors& tensors) {
  std::map<at::ScalarType, uint64_t> bytes;
  for (const auto& named : tensors) {
    if (named.second.is_floating_point()) bytes[named.second.scalar_type()] += named.second.nbytes();
  }
  const auto most = std::max_element(bytes.begin(), bytes.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  VT_CHECK(most != bytes.end(), "the merged weights hold no floating-point tensor");
  VT_CHECK(most->first == at::kBFloat16 || most->first == at::kFloat, "merged weights are mostly ", most->first,
           ", which config.json cannot name (bf16 or fp32 only)");
  return most->first == at::kBFloat16 ? "bfloat16" : "float32";
}

// Damage that reached the weights (base weights with NaN, a checkpoint written before its values were checked) is
// refused, not shipped.
void check_finite_weights(const torch::nn::Module& model, const std::string& source) {
  for (const auto& item : model.named_parameters(true)) {
    const int64_t bad = at::isfinite(item.value()).logical_not().sum().item<int64_t>();
    VT_CHECK(bad == 0, source, ": tensor '", item.key(), "' holds ", bad, " non-finite value(s); nothing exported");
  }
}

// The merged export's files in FOLDER; returns the tensors written.
int64_t write_merged(setup::TrainedModel& trained, const WeightDtypes& dtypes, const ExportOptions& options,
                     const fs::path& folder) {
  const setup::TrainConfig& config = trained.config;
  const NamedTensors tensors = merged_weights(*trained.model, dtypes);
  io::save_safetensors_sharded(folder.string(), tensors, options.max_shard_bytes, kMetadata);
  if (config.model.config_json.empty()) {
    write_text_file_atomically((folder / "config.json").string(), trained.shapes.sa2va.to_json(config_dtype(tensors)));
  } else {
    // The real checkpoint's config describes this model (model_shapes read it) and has what we do not know.
    const fs::path source = fs::is_directory(config.model.config_json) ? fs::path(config.model.config_json) / "config.json"
                                                                        : fs::path(config.model.config_json);
    copy_file_atomically(source.string(), (folder / "config.json").string());
    copy_remote_code(config.model.config_json, folder);
  }
  text::copy_tokenizer_files(config.model.tokenizer, folder.string());
  return static_cast<int64_t>(tensors.size());
}

// The PEFT export's files in FOLDER; returns the tensors written.
int64_t write_peft(setup::TrainedModel& trained, const WeightDtypes& dtypes, const fs::path& folder) {
  const setup::TrainConfig& config = trained.config;
  VT_CHECK(config.model.lora_r > 0, trained.source, ": the run trained no LoRA adapters (model.lora.r 0); ",
           "export it with --format merged");
  if (config.model.weights.empty()) {
    VT_LOG(warning) << trained.source << ": the run had no base weights (model.weights): its base was drawn from "
                    << "train.seed, and the adapter fits only that base";
  }
  model::save_peft_adapter(*trained.model, trained.shapes.sa2va.lora, folder.string(), config.model.weights);
  const NamedTensors tensors = trained_modules(*trained.model, dtypes);
  io::save_safetensors((folder / kTrainedModulesFile).string(), tensors, kMetadata);
  int64_t adapters = 0;
  for (const auto& item : trained.model->named_parameters(true)) adapters += is_adapter_tensor(item.key()) ? 1 : 0;
  return static_cast<int64_t>(tensors.size()) + adapters;
}

}  // namespace

ExportFormat parse_export_format(const std::string& text) {
  if (text == "merged") return ExportFormat::merged;
  if (text == "peft") return ExportFormat::peft;
  VT_FAIL("export format '", text, "' is neither merged nor peft");
}

ExportSummary export_checkpoint(const ExportOptions& options) {
  VT_CHECK(!options.dtype || *options.dtype == at::kBFloat16 || *options.dtype == at::kFloat,
           "export dtype must be bf16 or fp32, got ", *options.dtype);
  OutputFolder folder(options.out, options.overwrite);  // refuses an existing OUT before the model is loaded
  // fp32 on the CPU: the merge (W + s·B·A) is exact to fp32 rounding whatever dtype the files get.
  setup::TrainedModel trained = setup::load_trained_model(options.checkpoint, options.overrides, at::kCPU, at::kFloat);
  check_finite_weights(*trained.model, trained.source);
  std::optional<io::Checkpoint> base;
  if (!trained.config.model.weights.empty()) base.emplace(trained.config.model.weights);
  const WeightDtypes dtypes{options.dtype, base ? &*base : nullptr};

  ExportSummary summary;
  summary.checkpoint = trained.source;
  summary.step = trained.step;
  summary.out = options.out;
  torch::NoGradGuard no_grad;
  summary.tensors = options.format == ExportFormat::merged ? write_merged(trained, dtypes, options, folder.staging())
                                                           : write_peft(trained, dtypes, folder.staging());
  write_text_file_atomically((folder.staging() / setup::kExportedConfigName).string(), trained.config.to_yaml());
  for (const auto& entry : fs::directory_iterator(folder.staging())) {
    summary.files.push_back(entry.path().filename().string());
    summary.bytes += fs::file_size(entry.path());
  }
  std::sort(summary.files.begin(), summary.files.end());
  folder.commit();
  return summary;
}

}  // namespace vesseltune::exporting
