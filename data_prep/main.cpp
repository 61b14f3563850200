// vesseltune-pack: packs a vessel data set in its original layout, or synthetic vessels, into HDF5 shards.
//   vesseltune-pack [--layout NAME] SOURCE_DIR OUT_DIR [options]
//   vesseltune-pack synth OUT_DIR [--count N] [--seed S] [--style fundus|angio|mixed] [--size PX]

#include <CLI/CLI.hpp>
#include <iostream>

#include "vesseltune/core/log.h"
#include "vesseltune/data/packer.h"

namespace vt = vesseltune::data;

namespace {

// Options both commands take.
void add_common_options(CLI::App& app, vt::PackOptions& options) {
  app.add_option("--samples-per-shard", options.shards.samples_per_shard, "samples in each HDF5 shard")
      ->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--compression", options.shards.compression_level, "deflate level 1..9 of masks and FOV, 0 stores them")
      ->capture_default_str()->check(CLI::Range(0, 9));
  app.add_option("--image-compression", options.shards.image_compression_level,
                 "deflate level 1..9 of the images (about half the disk, a third more reader CPU for large images); "
                 "0 stores them")
      ->capture_default_str()->check(CLI::Range(0, 9));
  app.add_option("--val-fraction", options.val_fraction, "validation share where there is no official split")
      ->capture_default_str()->check(CLI::Range(0.0, 0.99));
  app.add_option("--text", options.texts, "referring text (repeat for several; default \"blood vessels\")");
  app.add_option("--dataset-name", options.dataset_name, "name stored with each sample (default: the layout's)");
  app.add_option("--jobs,-j", options.threads, "decoding threads (default: one per core)")->check(CLI::NonNegativeNumber);
  app.add_flag("--overwrite", options.shards.overwrite, "replace OUT_DIR once the new set is complete");
}

std::string command_line(int argc, char** argv) {
  std::string text;
  for (int i = 0; i < argc; ++i) text += (i ? " " : "") + std::string(argv[i]);
  return text;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    vesseltune::log::init({});
    CLI::App app{
        "Packs vessel images and masks into HDF5 shards for vesseltune-train.\n"
        "  vesseltune-pack [--layout NAME] SOURCE_DIR OUT_DIR [options]\n"
        "  vesseltune-pack synth OUT_DIR [--count N] [--seed S] [--style fundus|angio|mixed] [--size PX]"};
    vt::PackOptions options;
    std::string source, out, layout;
    app.add_option("SOURCE_DIR", source, "data set folder (or a generic manifest .csv/.json)");
    app.add_option("OUT_DIR", out, "where the shards and manifest.json go");
    app.add_option("--layout", layout, "DRIVE, STARE, CHASE_DB1, HRF, FIVES or generic (default: detected)");
    app.add_option("--seed", options.seed, "seed of the train/val draw")->capture_default_str();
    app.add_option("--mask-threshold", options.mask_threshold,
                   "binarise masks as value >= T (default: masks must hold exactly two levels)")
        ->check(CLI::Range(1, 255));
    app.add_flag("--skip-bad", options.skip_bad, "skip unreadable or inconsistent samples and report them");
    add_common_options(app, options);

    vt::SynthOptions synth;
    vt::PackOptions synth_options;
    std::string synth_out, style = "mixed";
    CLI::App* synth_command = app.add_subcommand("synth", "procedural vessel images with exact masks");
    synth_command->add_option("OUT_DIR", synth_out, "where the shards and manifest.json go")->required();
    synth_command->add_option("--count", synth.count, "number of samples")->capture_default_str()
        ->check(CLI::PositiveNumber);
    synth_command->add_option("--seed", synth.seed, "seed")->capture_default_str();
    synth_command->add_option("--style", style, "fundus, angio or mixed")->capture_default_str()
        ->check(CLI::IsMember({"fundus", "angio", "mixed"}));
    synth_command->add_option("--size", synth.size, "image side in pixels")->capture_default_str()
        ->check(CLI::Range(64, 8192));
    add_common_options(*synth_command, synth_options);

    CLI11_PARSE(app, argc, argv);
    vt::PackReport report;
    if (synth_command->parsed()) {
      synth.style = vt::parse_synth_style(style);
      synth_options.shards.command = command_line(argc, argv);
      report = vt::pack_synthetic(synth, synth_out, synth_options);
      out = synth_out;
    } else {
      if (source.empty() || out.empty()) {
        std::cerr << app.help() << "\nerror: SOURCE_DIR and OUT_DIR are required\n";
        return 2;
      }
      if (!layout.empty()) options.layout = vt::parse_layout(layout);
      options.shards.command = command_line(argc, argv);
      report = vt::pack_dataset(source, out, options);
    }
    int64_t total = 0;
    for (const auto& [split, summary] : report.splits) total += summary.images;
    std::cout << report.table();
    std::cout << "packed " << total << " samples into " << report.manifest.shards.size() << " shards in " << out
              << " (" << report.seconds << " s, " << (report.seconds > 0 ? total / report.seconds : 0.0)
              << " images/s)\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "vesseltune-pack: " << e.what() << "\n";
    return 1;
  }
}
