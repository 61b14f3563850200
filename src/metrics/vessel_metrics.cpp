#include "vesseltune/metrics/vessel_metrics.h"

#include <cmath>
#include <limits>

#include "vesseltune/core/check.h"
#include "vesseltune/metrics/skeleton.h"

namespace vesseltune::metrics {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The one edge-case rule of the header: 0/0 = 1.
double ratio(int64_t numerator, int64_t denominator) {
  return denominator == 0 ? 1.0 : static_cast<double>(numerator) / static_cast<double>(denominator);
}

void check_mask(const at::Tensor& mask, const at::Tensor& probability, const char* what, const std::string& name) {
  VT_CHECK(mask.scalar_type() == at::kByte && mask.device().is_cpu(), "image ", name, ": the ", what,
           " must be a CPU uint8 tensor of 0/1, got ", mask.scalar_type(), " on ", mask.device());
  VT_CHECK(mask.sizes() == probability.sizes(), "image ", name, ": the ", what, " is ", mask.sizes(),
           " but the probability map is ", probability.sizes());
}

}  // namespace

const char* region_name(Region region) { return region == Region::fov ? "fov" : "full"; }

const char* metric_name(Metric metric) {
  static constexpr const char* kNames[kMetricCount] = {"dice",     "iou",       "sensitivity", "specificity",
                                                       "accuracy", "precision", "cldice",      "auc"};
  return kNames[static_cast<int>(metric)];
}

const std::array<CountField, 8>& count_fields() {
  static const std::array<CountField, 8> kFields = {{
      {"tp", &RegionCounts::tp},
      {"fp", &RegionCounts::fp},
      {"fn", &RegionCounts::fn},
      {"tn", &RegionCounts::tn},
      {"skeleton_predicted", &RegionCounts::skeleton_predicted},
      {"skeleton_predicted_in_truth", &RegionCounts::skeleton_predicted_in_truth},
      {"skeleton_truth", &RegionCounts::skeleton_truth},
      {"skeleton_truth_in_predicted", &RegionCounts::skeleton_truth_in_predicted},
  }};
  return kFields;
}

RegionCounts& RegionCounts::operator+=(const RegionCounts& other) {
  for (const CountField& field : count_fields()) this->*field.member += other.*field.member;
  return *this;
}

RegionMetrics metrics_from_counts(const RegionCounts& c, double auc) {
  RegionMetrics metrics;
  metrics.counts = c;
  auto set = [&metrics](Metric metric, double value) { metrics.values[static_cast<int>(metric)] = value; };
  set(Metric::dice, ratio(2 * c.tp, 2 * c.tp + c.fp + c.fn));
  set(Metric::iou, ratio(c.tp, c.tp + c.fp + c.fn));
  set(Metric::sensitivity, ratio(c.tp, c.tp + c.fn));
  set(Metric::specificity, ratio(c.tn, c.tn + c.fp));
  set(Metric::accuracy, ratio(c.tp + c.tn, c.tp + c.fp + c.fn + c.tn));
  set(Metric::precision, ratio(c.tp, c.tp + c.fp));
  const double topology_precision = ratio(c.skeleton_predicted_in_truth, c.skeleton_predicted);
  const double topology_sensitivity = ratio(c.skeleton_truth_in_predicted, c.skeleton_truth);
  const double sum = topology_precision + topology_sensitivity;
  set(Metric::cldice, sum == 0 ? 0.0 : 2 * topology_precision * topology_sensitivity / sum);
  set(Metric::auc, auc);
  return metrics;
}

ScoreHistogram& ScoreHistogram::operator+=(const ScoreHistogram& other) {
  for (int b = 0; b < kScoreBins; ++b) {
    vessel[b] += other.vessel[b];
    background[b] += other.background[b];
  }
  return *this;
}

double auc(const ScoreHistogram& histogram) {
  // Twice the number of (vessel, background) pairs the vessel pixel wins, ties counting one: exact in 128 bits
  // (the pair count of a pooled set passes 2^63 long before its pixel count does).
  unsigned __int128 twice_won = 0;
  int64_t background_below = 0, vessels = 0;
  for (int b = 0; b < kScoreBins; ++b) {
    const int64_t tied = histogram.background[b];
    twice_won += static_cast<unsigned __int128>(histogram.vessel[b]) *
                 static_cast<unsigned __int128>(2 * background_below + tied);
    background_below += tied;
    vessels += histogram.vessel[b];
  }
  if (vessels == 0 || background_below == 0) return kNaN;
  const long double pairs = static_cast<long double>(vessels) * static_cast<long double>(background_below);
  return static_cast<double>(static_cast<long double>(twice_won) / (2 * pairs));
}

at::Tensor vessel_mask(const at::Tensor& probability, double threshold) {
  return (probability > threshold).to(at::kByte);
}

RegionCounts confusion_counts(const at::Tensor& probability, const at::Tensor& truth, const at::Tensor& region,
                              double threshold) {
  VT_CHECK(probability.sizes() == truth.sizes(), "confusion counts: probability ", probability.sizes(), " and truth ",
           truth.sizes(), " differ in shape");
  VT_CHECK(!region.defined() || region.sizes() == truth.sizes(), "confusion counts: region ", region.sizes(),
           " and truth ", truth.sizes(), " differ in shape");
  const at::Tensor p = vessel_mask(probability, threshold).to(at::kLong);
  const at::Tensor t = truth.to(probability.device(), at::kLong);
  const at::Tensor r = region.defined() ? region.to(probability.device(), at::kLong) : at::ones_like(t);
  const at::Tensor sums = at::stack({(p * t * r).sum(), (p * (1 - t) * r).sum(), ((1 - p) * t * r).sum(),
                                     ((1 - p) * (1 - t) * r).sum()}).cpu();
  const int64_t* v = sums.data_ptr<int64_t>();
  RegionCounts counts;
  counts.tp = v[0];
  counts.fp = v[1];
  counts.fn = v[2];
  counts.tn = v[3];
  return counts;
}

ImageEvaluation evaluate_image(const std::string& name, const at::Tensor& probability, const at::Tensor& truth,
                               const at::Tensor& fov, double threshold) {
  VT_CHECK(probability.dim() == 2 && at::isFloatingType(probability.scalar_type()) && probability.device().is_cpu(),
           "image ", name, ": the probability map must be a CPU floating [H, W] tensor, got ",
           probability.scalar_type(), " ", probability.sizes(), " on ", probability.device());
  check_mask(truth, probability, "truth", name);
  check_mask(fov, probability, "field of view", name);
  VT_CHECK(threshold >= 0 && threshold <= 1, "image ", name, ": threshold ", threshold, " is not in [0, 1]");
  const int64_t height = probability.size(0), width = probability.size(1), count = height * width;
  const at::Tensor scores = probability.to(at::kDouble).contiguous();
  const at::Tensor truth_mask = truth.contiguous(), fov_mask = fov.contiguous();
  const double* p = scores.data_ptr<double>();
  const uint8_t* t = truth_mask.data_ptr<uint8_t>();
  const uint8_t* f = fov_mask.data_ptr<uint8_t>();

  at::Tensor predicted = at::empty({height, width}, at::kByte);
  uint8_t* predicted_pixels = predicted.data_ptr<uint8_t>();
  for (int64_t i = 0; i < count; ++i) {
    VT_CHECK(p[i] >= 0 && p[i] <= 1, "image ", name, ": probability ", p[i], " at (", i / width, ", ", i % width,
             ") is not in [0, 1]");
    VT_CHECK(t[i] <= 1 && f[i] <= 1, "image ", name, ": the truth or field of view holds ", int(t[i]), "/",
             int(f[i]), " at (", i / width, ", ", i % width, "); masks hold 0 or 1");
    predicted_pixels[i] = is_vessel(p[i], threshold);
  }
  const at::Tensor predicted_skeleton_tensor = skeletonize(predicted), truth_skeleton_tensor = skeletonize(truth_mask);
  const uint8_t* sp = predicted_skeleton_tensor.data_ptr<uint8_t>();
  const uint8_t* st = truth_skeleton_tensor.data_ptr<uint8_t>();

  ImageEvaluation evaluation;
  std::array<RegionCounts, kRegionCount> counts;
  for (int64_t i = 0; i < count; ++i) {
    const bool in_truth = t[i], in_prediction = predicted_pixels[i];
    const int bin = static_cast<int>(std::lround(p[i] * (kScoreBins - 1)));
    for (const Region region : {Region::fov, Region::full}) {
      if (region == Region::fov && !f[i]) continue;
      RegionCounts& c = counts[static_cast<int>(region)];
      c.tp += in_prediction && in_truth;
      c.fp += in_prediction && !in_truth;
      c.fn += !in_prediction && in_truth;
      c.tn += !in_prediction && !in_truth;
      c.skeleton_predicted += sp[i];
      c.skeleton_predicted_in_truth += sp[i] && in_truth;
      c.skeleton_truth += st[i];
      c.skeleton_truth_in_predicted += st[i] && in_prediction;
      ScoreHistogram& histogram = evaluation.histograms[static_cast<int>(region)];
      (in_truth ? histogram.vessel : histogram.background)[bin] += 1;
    }
  }
  const RegionCounts& fov_counts = counts[static_cast<int>(Region::fov)];
  VT_CHECK(fov_counts.tp + fov_counts.fp + fov_counts.fn + fov_counts.tn > 0, "image ", name,
           ": the field of view is empty");

  evaluation.metrics.name = name;
  evaluation.metrics.threshold = threshold;
  for (int r = 0; r < kRegionCount; ++r) {
    evaluation.metrics.regions[r] = metrics_from_counts(counts[r], auc(evaluation.histograms[r]));
  }
  return evaluation;
}

void pack(const ImageMetrics& metrics, std::vector<double>& out) {
  out.push_back(metrics.threshold);
  for (const RegionMetrics& region : metrics.regions) {
    for (const CountField& field : count_fields()) out.push_back(static_cast<double>(region.counts.*field.member));
    out.insert(out.end(), region.values.begin(), region.values.end());
  }
}

ImageMetrics unpack(const std::string& name, const std::vector<double>& values, size_t offset) {
  VT_CHECK(offset + kPackedImageSize <= values.size(), "unpack image ", name, ": needs ", kPackedImageSize,
           " values from offset ", offset, " but there are only ", values.size());
  const double* v = values.data() + offset;
  ImageMetrics metrics;
  metrics.name = name;
  metrics.threshold = *v++;
  for (RegionMetrics& region : metrics.regions) {
    for (const CountField& field : count_fields()) region.counts.*field.member = static_cast<int64_t>(*v++);
    for (double& value : region.values) value = *v++;
  }
  return metrics;
}

void MetricsAccumulator::add_image(const ImageMetrics& metrics) {
  VT_CHECK(images_.empty() || metrics.threshold == images_.front().threshold, "image ", metrics.name,
           " was scored at threshold ", metrics.threshold, " but image ", images_.front().name, " at ",
           images_.front().threshold, "; a summary needs one threshold");
  images_.push_back(metrics);
}

void MetricsAccumulator::add_scores(const RegionHistograms& histograms) {
  for (int r = 0; r < kRegionCount; ++r) histograms_[r] += histograms[r];
}

MetricsSummary MetricsAccumulator::summary() const {
  VT_CHECK(!images_.empty(), "metrics summary: no image was evaluated");
  MetricsSummary summary;
  summary.images = static_cast<int64_t>(images_.size());
  summary.threshold = images_.front().threshold;
  for (int r = 0; r < kRegionCount; ++r) {
    RegionSummary& region = summary.regions[r];
    for (const ImageMetrics& image : images_) region.counts += image.regions[r].counts;
    const RegionMetrics pooled = metrics_from_counts(region.counts, auc(histograms_[r]));
    for (int m = 0; m < kMetricCount; ++m) {
      MetricAggregate& aggregate = region.metrics[m];
      double sum = 0;
      for (const ImageMetrics& image : images_) {
        const double value = image.regions[r].values[m];
        if (std::isnan(value)) continue;
        sum += value;
        ++aggregate.images_used;
      }
      const int64_t n = aggregate.images_used;
      aggregate.mean = n > 0 ? sum / static_cast<double>(n) : kNaN;
      double squares = 0;
      for (const ImageMetrics& image : images_) {
        const double value = image.regions[r].values[m];
        if (!std::isnan(value)) squares += (value - aggregate.mean) * (value - aggregate.mean);
      }
      aggregate.sd = n > 1 ? std::sqrt(squares / static_cast<double>(n - 1)) : kNaN;
      aggregate.pooled = pooled.values[m];
    }
  }
  return summary;
}

}  // namespace vesseltune::metrics
