// vesseltune-export: a training checkpoint as files other tools load: merged Hugging Face weights in Sa2VA's
// official layout (sharded safetensors + index, config.json, tokenizer) or a PEFT adapter with the fully trained
// modules (export_checkpoint.h says what goes where and how Python loads it). A plain process: reading a
// checkpoint needs no MPI, so MPI is never initialised (as vesseltune-train --plan).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>

#include "vesseltune/core/log.h"
#include "vesseltune/export/byte_size.h"
#include "vesseltune/export/export_checkpoint.h"

using namespace vesseltune;

int main(int argc, char** argv) {
  CLI::App app{"vesseltune-export: merged Hugging Face weights (Sa2VA's layout) or a PEFT adapter from a training "
               "checkpoint"};
  exporting::ExportOptions options;
  std::string format = "merged", dtype, shard_size = "5GB";
  app.add_option("--checkpoint", options.checkpoint,
                 "a checkpoint (WORK_DIR/checkpoints/step_N.h5), or a work dir (its newest complete checkpoint)")
      ->required();
  app.add_option("--out", options.out, "the folder to write (appears complete or not at all)")->required();
  app.add_option("--format", format, "merged: Hugging Face weights with LoRA merged in; peft: adapter + trained modules")
      ->check(CLI::IsMember({"merged", "peft"}));
  app.add_option("--dtype", dtype, "bf16 or fp32 (default: the base weights' dtypes when the run had base weights, "
                                   "else bf16)")
      ->check(CLI::IsMember({"bf16", "fp32"}));
  app.add_option("--shard-size", shard_size, "largest weights file of a merged export, e.g. 5GB (default), 500MB, 2GiB");
  app.add_option("--set", options.overrides,
                 "override a key of the run's config: --set model.weights=/new/place/Sa2VA-1B (repeatable)");
  app.add_flag("--overwrite", options.overwrite, "replace an existing --out folder");
  CLI11_PARSE(app, argc, argv);

  try {
    log::init({});
    options.format = exporting::parse_export_format(format);
    if (!dtype.empty()) options.dtype = dtype == "bf16" ? at::kBFloat16 : at::kFloat;
    options.max_shard_bytes = exporting::parse_byte_size(shard_size);
    const exporting::ExportSummary summary = exporting::export_checkpoint(options);
    std::cout << "vesseltune-export: step " << summary.step << " of " << summary.checkpoint << " -> " << summary.out
              << " (" << format << "): " << summary.tensors << " tensors, " << summary.files.size() << " files, "
              << summary.bytes << " bytes\n";
    for (const std::string& file : summary.files) {
      std::cout << "  " << file << "  " << std::filesystem::file_size(std::filesystem::path(summary.out) / file)
                << " bytes\n";
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vesseltune-export: %s\n", e.what());
    return 1;
  }
  return 0;
}
