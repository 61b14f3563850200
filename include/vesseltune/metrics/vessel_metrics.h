#pragma once
// The numbers vessel-segmentation papers report, per image and over a test set, for two regions of each image:
// inside the field of view (FOV; how papers report) and the full image.
//
// One module for every number about masks: validation during training, vesseltune-eval and vesseltune-predict all
// threshold and count here, so train.log's dice_fov and vesseltune-eval's are the same computation.
//
// Definitions (P = predicted vessel pixels, T = true vessel pixels, both within the region):
//   a pixel is predicted vessel when its probability > the threshold (is_vessel; Sa2VA's `sigmoid() > 0.5`);
//   TP = |P ∩ T|, FP = |P \ T|, FN = |T \ P|, TN = the region's other pixels;
//   dice = 2TP / (2TP + FP + FN)  (F1)        iou = TP / (TP + FP + FN)  (Jaccard)
//   sensitivity = TP / (TP + FN)  (recall)     specificity = TN / (TN + FP)
//   accuracy = (TP + TN) / region pixels       precision = TP / (TP + FP)
//   cldice (Shit et al., CVPR 2021) = 2·Tprec·Tsens / (Tprec + Tsens), with Tprec = |S(P) ∩ T| / |S(P)| and
//     Tsens = |S(T) ∩ P| / |S(T)|, S = the skeleton of metrics/skeleton.h (scikit-image's). The skeletons are those
//     of the full-image masks: the FOV region restricts P, T and both skeletons to the FOV after skeletonising, so
//     the FOV border never cuts a vessel's skeleton into pieces that skeletonising the cropped mask would give;
//   auc = area under the ROC curve of the probabilities = P(score of a vessel pixel > score of a background pixel)
//     + ½·P(equal), scores being the probabilities quantised to round(p · 65535) (halves away from zero).
//     Counting pairs through histograms of the quantised scores makes it exact for those scores (no trapezoid
//     approximation), and the histograms add up over images, so the pooled AUC is exact too.
//
// Edge cases, one rule: a ratio whose denominator is 0 is 1 — the metric had nothing to get wrong (both masks
// empty: dice = iou = 1; no vessel pixels: sensitivity = 1; nothing predicted: precision = 1; an empty skeleton
// gives Tprec or Tsens = 1). clDice is 0 when Tprec = Tsens = 0. The other metrics' errors show in the others
// (no vessel but something predicted: sensitivity 1, precision 0, dice 0). Only auc can be undefined: NaN when
// the region holds a single class; aggregations skip NaN and report how many images they used.
//
// Aggregations over a set: "per image" = the metric of each image, then mean and sample standard deviation over
// the images; "pooled" = the metric once, from the counts (skeleton counts, score histograms) summed over images.

#include <ATen/ATen.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace vesseltune::metrics {

// The one threshold rule, wherever a probability becomes a mask.
constexpr double kDefaultThreshold = 0.5;
inline bool is_vessel(double probability, double threshold) { return probability > threshold; }
// PROBABILITY (any shape, any device) as a uint8 0/1 mask by is_vessel.
at::Tensor vessel_mask(const at::Tensor& probability, double threshold);

enum class Region { fov, full };
constexpr int kRegionCount = 2;
const char* region_name(Region region);  // "fov", "full"

enum class Metric { dice, iou, sensitivity, specificity, accuracy, precision, cldice, auc };
constexpr int kMetricCount = 8;
const char* metric_name(Metric metric);  // "dice", "iou", ...: the names in the table and in every file

// The pixel counts of one region, from which every metric but auc follows.
struct RegionCounts {
  int64_t tp = 0, fp = 0, fn = 0, tn = 0;
  int64_t skeleton_predicted = 0;           // |S(P)|
  int64_t skeleton_predicted_in_truth = 0;  // |S(P) ∩ T|
  int64_t skeleton_truth = 0;               // |S(T)|
  int64_t skeleton_truth_in_predicted = 0;  // |S(T) ∩ P|

  RegionCounts& operator+=(const RegionCounts& other);
};

// The counts by name ("tp", "fp", "fn", "tn", "skeleton_predicted", ...), in the order of files and packing.
struct CountField {
  const char* name;
  int64_t RegionCounts::*member;
};
const std::array<CountField, 8>& count_fields();

struct RegionMetrics {
  RegionCounts counts;
  std::array<double, kMetricCount> values{};  // by Metric

  double operator[](Metric metric) const { return values[static_cast<int>(metric)]; }
};

// Every metric of COUNTS (see the definitions above) and the given AUC.
RegionMetrics metrics_from_counts(const RegionCounts& counts, double auc);

// TP, FP, FN and TN (no skeletons) of vessel_mask(PROBABILITY) against TRUTH (0/1) within REGION (0/1; every pixel
// when undefined), as tensor sums on PROBABILITY's device: what validation needs for its Dice.
RegionCounts confusion_counts(const at::Tensor& probability, const at::Tensor& truth, const at::Tensor& region,
                              double threshold);

// Histograms of the quantised probability (kScoreBins bins, bin = round(p · 65535)) of the vessel and of the
// background pixels of one region.
constexpr int kScoreBins = 65536;
struct ScoreHistogram {
  std::vector<int64_t> vessel = std::vector<int64_t>(kScoreBins, 0);
  std::vector<int64_t> background = std::vector<int64_t>(kScoreBins, 0);

  ScoreHistogram& operator+=(const ScoreHistogram& other);
};
using RegionHistograms = std::array<ScoreHistogram, kRegionCount>;  // by Region

// The exact AUC of the quantised scores; NaN when either class is empty.
double auc(const ScoreHistogram& histogram);

struct ImageMetrics {
  std::string name;
  double threshold = 0.5;
  std::array<RegionMetrics, kRegionCount> regions;  // by Region

  const RegionMetrics& operator[](Region region) const { return regions[static_cast<int>(region)]; }
};

struct ImageEvaluation {
  ImageMetrics metrics;
  RegionHistograms histograms;  // for the pooled AUC (MetricsAccumulator::add_scores)
};

// PROBABILITY: floating [H, W] with values in [0, 1]; TRUTH and FOV: uint8 [H, W] of 0/1; all on the CPU. The
// FOV must hold at least one pixel. Errors name the image.
ImageEvaluation evaluate_image(const std::string& name, const at::Tensor& probability, const at::Tensor& truth,
                               const at::Tensor& fov, double threshold);

// The numeric part of ImageMetrics as doubles (counts are exact below 2^53), for shipping between ranks:
// threshold, then per region (fov, full) the counts in count_fields() order and the metrics in Metric order.
constexpr size_t kPackedImageSize = 1 + kRegionCount * (8 + kMetricCount);
void pack(const ImageMetrics& metrics, std::vector<double>& out);  // appends kPackedImageSize values
ImageMetrics unpack(const std::string& name, const std::vector<double>& values, size_t offset);

struct MetricAggregate {
  double mean = 0;            // over the images whose value is not NaN; NaN when there is none
  double sd = 0;              // sample standard deviation (n - 1) over those images; NaN for fewer than 2
  double pooled = 0;          // from the summed counts / histograms
  int64_t images_used = 0;    // images whose value is not NaN
};

struct RegionSummary {
  std::array<MetricAggregate, kMetricCount> metrics;  // by Metric
  RegionCounts counts;                                // summed over the images
};

struct MetricsSummary {
  int64_t images = 0;
  double threshold = 0.5;
  std::array<RegionSummary, kRegionCount> regions;  // by Region
};

// Collects per-image metrics (add_image) and the score histograms (add_scores; the histograms of any number of
// images, already summed or not: across ranks they are summed with MPI before the one add_scores call).
class MetricsAccumulator {
 public:
  void add_image(const ImageMetrics& metrics);  // every image must have the same threshold
  void add_scores(const RegionHistograms& histograms);
  void add(const ImageEvaluation& evaluation) {
    add_image(evaluation.metrics);
    add_scores(evaluation.histograms);
  }

  const std::vector<ImageMetrics>& images() const { return images_; }
  MetricsSummary summary() const;  // needs at least one image

 private:
  std::vector<ImageMetrics> images_;
  RegionHistograms histograms_;
};

}  // namespace vesseltune::metrics
