#pragma once
// vesseltune-pack's work: list a data set's files (layout.h) or synthesise samples (synth.h), decode and
// check them in parallel, assign the train/val split, and write the shards (shard_writer.h) with a
// summary of what was packed.
//
// Masks: read as grey (the largest channel), they must hold two levels, 0 and one other value m, and
// m marks vessel (the DRIVE/STARE/CHASE_DB1/HRF/FIVES ground truths are 0/255, some angiography exports
// 0/1). A mask with more levels is refused as non-binary unless --mask-threshold T says that values >= T
// are vessel (lossy masks). FOV masks follow the same rule; without them the FOV is all ones.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "vesseltune/data/layout.h"
#include "vesseltune/data/manifest.h"
#include "vesseltune/data/shard_writer.h"
#include "vesseltune/data/synth.h"

namespace vesseltune::data {

struct PackOptions {
  std::optional<Layout> layout;    // empty: detect
  std::string dataset_name;        // empty: the layout's name (or the source folder's for generic)
  std::vector<std::string> texts;  // referring texts; empty: {"blood vessels"}
  double val_fraction = 0.1;       // for data sets without an official split
  uint64_t seed = 0;               // draws that split
  int mask_threshold = 0;          // 0: the two-level rule above; T > 0: values >= T are vessel
  bool skip_bad = false;           // skip (and report) bad samples instead of failing
  int threads = 0;                 // decoding threads; 0: one per core
  ShardSetOptions shards;
};

struct SplitSummary {
  int64_t images = 0;
  int min_height = 0, max_height = 0, min_width = 0, max_width = 0;
  double vessel_fraction_sum = 0;  // vessel pixels / FOV pixels, summed over images
};

struct PackReport {
  Manifest manifest;
  std::vector<std::string> skipped;  // one line per skipped sample: file and reason
  std::vector<std::pair<std::string, SplitSummary>> splits;
  double seconds = 0;

  // The table printed at the end: images, size range and mean vessel fraction per split.
  std::string table() const;
};

// Reads the one vessel mask or FOV mask file rule above describes into a 0/1 plane; errors name FILE.
Image binarise_mask(const Image& decoded, int threshold, const std::filesystem::path& file, const char* what);

// One listed item decoded and checked as the shards store it: grey images expanded to RGB, mask and FOV
// binarised (THRESHOLD as --mask-threshold) and of the image's size, the FOV all ones when the item has none, the
// mask all zeros when it has none (unlabelled images, for evaluation); source relative to BASE. Errors name files.
SampleRecord load_source_item(const SourceItem& item, const std::filesystem::path& base, const std::string& dataset,
                              const std::vector<std::string>& texts, int threshold);
// Split of each of COUNT samples: the VAL_FRACTION (rounded) drawn by SEED are "val", the rest "train".
std::vector<std::string> draw_splits(int64_t count, double val_fraction, uint64_t seed);

PackReport pack_dataset(const std::filesystem::path& source, const std::filesystem::path& out,
                        const PackOptions& options);

PackReport pack_synthetic(const SynthOptions& synth, const std::filesystem::path& out, const PackOptions& options);

}  // namespace vesseltune::data
