// vesseltune-eval: a trained Sa2VA on packed shards or an image folder, ranks splitting the images (mpirun / srun;
// one rank works too). Per image: the predicted mask (OUT/masks/NAME.png, 0/255) and, with ground truth, an overlay
// of its errors (OUT/overlays/NAME.png). Then rank 0 gathers the metrics: the table (printed and in OUT/eval.log),
// OUT/metrics_per_image.csv, OUT/metrics_summary.csv, OUT/metrics.h5, and OUT/contact_sheet.png with the worst and
// the best images by Dice in the FOV.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <iostream>
#include <numeric>
#include <sstream>

#include "vesseltune/comm/launch.h"
#include "vesseltune/core/check.h"
#include "vesseltune/core/fault_injection.h"
#include "vesseltune/core/log.h"
#include "vesseltune/data/codec.h"
#include "vesseltune/data/model_inputs.h"
#include "vesseltune/eval/image_source.h"
#include "vesseltune/eval/metrics_report.h"
#include "vesseltune/eval/overlay.h"
#include "vesseltune/eval/segmenter.h"
#include "vesseltune/export/output_folder.h"
#include "vesseltune/metrics/vessel_metrics.h"
#include "vesseltune/setup/trained_model.h"

using namespace vesseltune;
namespace fs = std::filesystem;

namespace {

struct Arguments {
  std::string checkpoint, weights, data, split = "val", layout, out;
  std::vector<std::string> overrides;
  int mask_threshold = 0;
  double threshold = metrics::kDefaultThreshold;
  int best_worst = 4;
  double collective_timeout_s = 1800;
  bool overwrite = false;
  eval::SegmenterOptions segmenter;
};

// What one rank measured, shipped to rank 0: image indices, names, packed metrics, summed score histograms.
struct RankResults {
  std::vector<double> indices;
  std::string names;  // '\n'-separated
  std::vector<double> packed;
  metrics::RegionHistograms histograms;
};

void sum_histograms(metrics::RegionHistograms& histograms, comm::Communicator& comm) {
  for (auto& h : histograms) {
    for (auto* bins : {&h.vessel, &h.background}) {
      comm.all_reduce_host(*bins, comm::Communicator::Reduction::sum, "eval: score histograms");
    }
  }
}

// Worst and best images by Dice in the FOV, from their overlays on disk.
void write_contact_sheet(const std::vector<metrics::ImageMetrics>& images, int per_side, const fs::path& out) {
  std::vector<const metrics::ImageMetrics*> order;
  for (const auto& m : images) order.push_back(&m);
  std::stable_sort(order.begin(), order.end(), [](const auto* a, const auto* b) {
    return (*a)[metrics::Region::fov][metrics::Metric::dice] < (*b)[metrics::Region::fov][metrics::Metric::dice];
  });
  const size_t n = std::min(order.size(), static_cast<size_t>(per_side));
  std::vector<const metrics::ImageMetrics*> chosen(order.begin(), order.begin() + static_cast<long>(n));
  for (size_t i = std::max(n, order.size() - n); i < order.size(); ++i) chosen.push_back(order[i]);
  std::vector<eval::SheetEntry> entries;
  for (size_t i = 0; i < chosen.size(); ++i) {
    std::ostringstream caption;
    caption.precision(3);
    caption << (i < n ? "worst " : "best ") << chosen[i]->name << " dice " << (*chosen[i])[metrics::Region::fov][metrics::Metric::dice];
    entries.push_back({data::decode_image(out / "overlays" / (chosen[i]->name + ".png")), caption.str()});
  }
  data::write_png(out / "contact_sheet.png", eval::contact_sheet(entries, static_cast<int>(std::max<size_t>(n, 1)), 320));
}

// One image: its mask on disk and, with ground truth, its overlay and metrics in MINE.
void score_image(const eval::EvalImage& image, int64_t index, const at::Tensor& probability,
                    const eval::ImageSource& source, const Arguments& args, RankResults& mine) {
  const fs::path out(args.out);
  const at::Tensor predicted = metrics::vessel_mask(probability, args.threshold);
  data::write_png(out / "masks" / (image.name + ".png"), eval::mask_image(predicted));
  if (!source.labelled()) return;
  const at::Tensor truth = data::plane_tensor(image.record.mask), fov = data::plane_tensor(image.record.fov);
  const metrics::ImageEvaluation result = metrics::evaluate_image(image.name, probability, truth, fov, args.threshold);
  data::write_png(out / "overlays" / (image.name + ".png"), eval::render_overlay(image.record.image, predicted, truth, fov));
  mine.indices.push_back(static_cast<double>(index));
  mine.names += image.name + "\n";
  metrics::pack(result.metrics, mine.packed);
  for (int r = 0; r < metrics::kRegionCount; ++r) mine.histograms[r] += result.histograms[r];
}

// This rank's images (every world.size-th), with progress lines from rank 0.
RankResults evaluate_my_images(eval::Segmenter& segmenter, const eval::ImageSource& source, const Arguments& args,
                               const comm::World& world) {
  RankResults mine;
  const auto start = std::chrono::steady_clock::now();
  int64_t done = 0;
  for (int64_t index = world.rank; index < source.size(); index += world.size) {
    const eval::EvalImage image = source.read(index);
    const int64_t without_seg = segmenter.answers_without_seg();
    const at::Tensor probability = segmenter.probability(image.record);
    if (segmenter.answers_without_seg() > without_seg) {
      VT_LOG(warning) << image.name << ": the generated answer has no [SEG]; scored as an empty mask";
    }
    score_image(image, index, probability, source, args, mine);
    ++done;
    if (world.rank == 0 && (done % 10 == 0 || index + world.size >= source.size())) {
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      VT_LOG(info) << "eval: " << done * world.size << " of " << source.size() << " images, " << seconds / done
                   << " s per image per rank";
    }
  }
  return mine;
}

// Every rank's metrics on rank 0, back in the source's order (other ranks: an empty accumulator).
metrics::MetricsAccumulator gather_metrics(RankResults& mine, comm::Communicator& comm) {
  const std::vector<double> indices = comm.gather_host(mine.indices, 0, "eval: image indices");
  const std::vector<double> packed = comm.gather_host(mine.packed, 0, "eval: image metrics");
  const std::vector<char> names =
      comm.gather_host(std::vector<char>(mine.names.begin(), mine.names.end()), 0, "eval: image names");
  sum_histograms(mine.histograms, comm);
  metrics::MetricsAccumulator accumulator;
  if (comm.rank() != 0) return accumulator;
  std::vector<std::string> all_names;
  std::istringstream lines(std::string(names.begin(), names.end()));
  for (std::string name; std::getline(lines, name);) all_names.push_back(name);
  VT_CHECK(all_names.size() == indices.size() && packed.size() == indices.size() * metrics::kPackedImageSize,
           "eval: the ranks' results do not add up (", all_names.size(), " names, ", indices.size(), " images)");
  std::vector<size_t> order(indices.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return indices[a] < indices[b]; });
  for (const size_t i : order) accumulator.add_image(metrics::unpack(all_names[i], packed, i * metrics::kPackedImageSize));
  accumulator.add_scores(mine.histograms);
  return accumulator;
}

// Rank 0: the CSV and HDF5 files, the contact sheet and the table in the log.
void write_reports(const metrics::MetricsAccumulator& accumulator, const std::string& what, const Arguments& args) {
  const fs::path out(args.out);
  const metrics::MetricsSummary summary = accumulator.summary();
  eval::write_per_image_csv((out / "metrics_per_image.csv").string(), accumulator.images());
  eval::write_summary_csv((out / "metrics_summary.csv").string(), summary);
  eval::write_metrics_hdf5((out / "metrics.h5").string(), accumulator.images(), summary);
  write_contact_sheet(accumulator.images(), args.best_worst, out);
  VT_LOG(info) << "metrics of " << what << ":\n" << eval::format_metrics_table(summary);
}

// Every rank's images scored into ARGS.out (the staging folder), the reports written by rank 0.
void score_and_report(const Arguments& args, const comm::World& world, comm::Communicator& comm) {
  const fs::path out(args.out);
  const setup::TrainedModel model = args.checkpoint.empty()
                                        ? setup::load_merged_model(args.weights, args.overrides, comm.device())
                                        : setup::load_trained_model(args.checkpoint, args.overrides, comm.device());
  const eval::ImageSource source(args.data, args.split, args.layout, args.mask_threshold);
  eval::Segmenter segmenter(model, args.segmenter);
  VT_LOG(info) << "evaluating " << model.source << " on " << source.size() << " images of " << source.description()
               << " (" << world.size << " ranks, " << args.segmenter.mode << " mode, threshold " << args.threshold << ")";

  RankResults mine = evaluate_my_images(segmenter, source, args, world);
  if (!source.labelled()) {
    VT_LOG(info) << "no ground truth in " << args.data << ": masks only, nothing scored";
    return;
  }
  fault::point("eval-gather", world.rank);
  const metrics::MetricsAccumulator accumulator = gather_metrics(mine, comm);
  const std::vector<double> without_seg = comm.gather_host(
      std::vector<double>{static_cast<double>(segmenter.answers_without_seg())}, 0, "eval: answers without [SEG]");
  if (world.rank != 0) return;
  if (args.segmenter.generate) {
    VT_LOG(info) << "generated answers without [SEG] (scored as empty masks): "
                 << std::accumulate(without_seg.begin(), without_seg.end(), 0.0) << " of " << source.size()
                 << (args.segmenter.mode == "tile" ? " windows' images" : " images");
  }
  write_reports(accumulator, model.source + " on " + source.description(), args);
}

// The output folder appears only when complete (written as OUT.tmp, renamed by rank 0); a failed run leaves nothing.
int evaluate(const Arguments& args, const comm::World& world) {
  std::unique_ptr<exporting::OutputFolder> folder;
  if (world.rank == 0) folder = std::make_unique<exporting::OutputFolder>(args.out, args.overwrite);
  Arguments staged = args;
  staged.out = exporting::OutputFolder::staging_for(args.out).string();
  const auto comm = comm::make_communicator(world, comm::Backend::automatic,
                                            std::chrono::milliseconds(static_cast<int64_t>(args.collective_timeout_s * 1000)));
  const fs::path staging(staged.out);
  if (world.rank == 0) fs::create_directories(staging / "masks"), fs::create_directories(staging / "overlays");
  comm->barrier("eval: output folder");
  log::init({world.rank, log::Severity::info, false, (staging / "eval.log").string()});
  score_and_report(staged, world, *comm);
  comm->barrier("eval: every file written");
  if (world.rank != 0) return 0;
  folder->commit();
  VT_LOG(info) << "written: " << args.out << "/ (masks/, overlays/, eval.log and, with ground truth, "
               << "metrics_per_image.csv, metrics_summary.csv, metrics.h5, contact_sheet.png)";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vesseltune-eval: masks, overlays and vessel metrics of a trained Sa2VA (run under mpirun or srun)"};
  app.option_defaults()->always_capture_default();
  Arguments args;
  auto* checkpoint = app.add_option("--checkpoint", args.checkpoint,
                                    "training checkpoint (step_N.h5) or work dir (its newest checkpoint)");
  auto* weights = app.add_option("--weights", args.weights, "merged weights folder written by vesseltune-export");
  checkpoint->excludes(weights);
  app.add_option("--data", args.data, "packed data folder, or an image folder (a vesseltune-pack layout or plain images)")
      ->required();
  app.add_option("--split", args.split, "split of packed data: val, train, or \"\" for every sample");
  app.add_option("--layout", args.layout, "image folder layout (DRIVE, STARE, CHASE_DB1, HRF, FIVES, generic); default: detect");
  app.add_option("--mask-threshold", args.mask_threshold, "as vesseltune-pack's: mask values >= T are vessel (0: two levels)");
  app.add_option("--out", args.out, "output folder (refused if it exists, unless --overwrite)")->required();
  app.add_flag("--overwrite", args.overwrite, "replace an existing output folder once the new one is complete");
  app.add_option("--mode", args.segmenter.mode, "resize (whole image, as trained) or tile (overlapping native windows)");
  app.add_option("--tile-size", args.segmenter.tile_size, "tile mode: window side in pixels")->check(CLI::PositiveNumber);
  app.add_option("--tile-overlap", args.segmenter.tile_overlap, "tile mode: pixels shared by neighbouring windows")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--generate", args.segmenter.generate,
               "the model generates its answer (greedy, as Sa2VA's predict_forward) instead of the teacher-forced "
               "\"Sure, [SEG].\"; its first [SEG] is scored, no [SEG] scores an empty mask");
  app.add_option("--threshold", args.threshold, "probability > threshold is vessel")->check(CLI::Range(0.0, 1.0));
  app.add_option("--best-worst", args.best_worst, "images of each kind on the contact sheet")->check(CLI::PositiveNumber);
  app.add_option("--collective-timeout", args.collective_timeout_s,
                 "seconds a rank waits for the others (at the end, for the slowest rank's images) before the job is ended")
      ->check(CLI::PositiveNumber);
  app.add_option("--set", args.overrides, "override a key of the run's config, e.g. model.weights=/models/Sa2VA-4B");
  CLI11_PARSE(app, argc, argv);
  if (args.checkpoint.empty() && args.weights.empty()) {
    std::cerr << "vesseltune-eval: give --checkpoint or --weights\n";
    return 2;
  }
  return comm::run_ranks(argc, argv, [&](const comm::World& world) { return evaluate(args, world); });
}
