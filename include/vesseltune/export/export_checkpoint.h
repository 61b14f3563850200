#pragma once
// vesseltune-export: a training checkpoint as files other tools load. The model is rebuilt exactly as the run
// built it (load_trained_model: base weights, LoRA, the trained weights; fp32 on the CPU), then written as
//
// merged (default): a Hugging Face model folder in Sa2VA's official layout, LoRA folded into the weights:
//   model.safetensors, or model-0000i-of-0000n.safetensors + model.safetensors.index.json (shards of at most
//                       max_shard_bytes), the tensors under the official names (merged_weights.h)
//   config.json         the run's model.config_json verbatim, or Sa2VA's config.json for the preset
//                       (Sa2VAConfig::to_json), with the *.py remote code beside model.config_json if any
//   tokenizer.json      the run's tokenizer, with tokenizer_config.json etc. when they sit next to it
//   vesseltune_config.yaml  the run's resolved config: setup::load_merged_model reads the folder back
// In Python, with Sa2VA's remote code (*.py of the base model's repository) in the folder:
//   model = AutoModel.from_pretrained(OUT, torch_dtype="auto", trust_remote_code=True)
//
// peft: the adapters for a base model that users already have:
//   adapter_config.json, adapter_model.safetensors   PEFT's LoRA files (save_peft_adapter; fp32), with
//                       base_model_name_or_path = the run's model.weights
//   trained_modules.safetensors   the fully trained modules (trained_modules.h)
//   vesseltune_config.yaml
// In Python:
//   from peft import PeftModel; from safetensors.torch import load_file
//   base = AutoModel.from_pretrained(BASE, torch_dtype="auto", trust_remote_code=True)
//   model = PeftModel.from_pretrained(base, OUT)          # adapter keys: base_model.model.<Sa2VA key>
//   missing, unexpected = model.base_model.model.load_state_dict(load_file(OUT + "/trained_modules.safetensors"),
//                                                                 strict=False)   # unexpected must be empty
//   model = model.merge_and_unload()                       # optional: the merged export's weights
//
// Floating-point tensors are stored in the requested dtype, else in the base checkpoint's dtypes, else bf16
// (weight_dtypes.h). The output folder appears complete or not at all (output_folder.h).

#include <ATen/ATen.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vesseltune::exporting {

enum class ExportFormat { merged, peft };

// "merged" or "peft"; throws naming TEXT otherwise.
ExportFormat parse_export_format(const std::string& text);

struct ExportOptions {
  std::string checkpoint;  // a step_N.h5 file, or a work dir / checkpoints folder (its newest complete checkpoint)
  std::string out;         // the folder to write
  ExportFormat format = ExportFormat::merged;
  std::optional<at::ScalarType> dtype;      // kBFloat16 or kFloat; unset: the base's dtypes, else bf16
  uint64_t max_shard_bytes = 5'000'000'000;  // merged weights per file (Hugging Face's default "5GB")
  std::vector<std::string> overrides;       // `key=value` changes to the run's config (e.g. where model.weights is now)
  bool overwrite = false;                   // replace an existing OUT
};

struct ExportSummary {
  std::string checkpoint;          // the checkpoint file read
  int64_t step = 0;                // its training steps
  std::string out;
  std::vector<std::string> files;  // written into OUT, sorted
  int64_t tensors = 0;             // tensors in the weight files
  uint64_t bytes = 0;              // of all files
};

// Throws vesseltune::Error naming the file and tensor on bad input (no checkpoint, a truncated one, a checkpoint
// of another model preset or LoRA setting, an existing OUT); OUT is then left as it was.
ExportSummary export_checkpoint(const ExportOptions& options);

}  // namespace vesseltune::exporting
