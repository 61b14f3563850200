// Vessel metrics against values worked out by hand (the working is in the comments).
#include <gtest/gtest.h>

#include <cmath>

#include "hand_images.h"
#include "vesseltune/core/check.h"
#include "vesseltune/metrics/vessel_metrics.h"

namespace vesseltune::metrics {
namespace {

at::Tensor mask_from_rows(const std::vector<std::string>& rows) {
  at::Tensor mask = at::zeros({static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size())}, at::kByte);
  for (size_t y = 0; y < rows.size(); ++y) {
    for (size_t x = 0; x < rows[y].size(); ++x) mask[y][x] = rows[y][x] == '1' ? 1 : 0;
  }
  return mask;
}

void expect_counts(const RegionCounts& c, int64_t tp, int64_t fp, int64_t fn, int64_t tn) {
  EXPECT_EQ(c.tp, tp);
  EXPECT_EQ(c.fp, fp);
  EXPECT_EQ(c.fn, fn);
  EXPECT_EQ(c.tn, tn);
}

void expect_metrics(const RegionMetrics& m, double dice, double iou, double sensitivity, double specificity,
                    double accuracy, double precision, double cldice) {
  EXPECT_DOUBLE_EQ(m[Metric::dice], dice);
  EXPECT_DOUBLE_EQ(m[Metric::iou], iou);
  EXPECT_DOUBLE_EQ(m[Metric::sensitivity], sensitivity);
  EXPECT_DOUBLE_EQ(m[Metric::specificity], specificity);
  EXPECT_DOUBLE_EQ(m[Metric::accuracy], accuracy);
  EXPECT_DOUBLE_EQ(m[Metric::precision], precision);
  EXPECT_DOUBLE_EQ(m[Metric::cldice], cldice);
}

ImageMetrics evaluate_masks(const at::Tensor& probability, const at::Tensor& truth, const at::Tensor& fov) {
  return evaluate_image("test", probability, truth, fov, 0.5).metrics;
}

TEST(VesselMetrics, FourByFourByHand) {
  const ImageMetrics m = hand::evaluate("a").metrics;
  EXPECT_EQ(m.name, "a");
  EXPECT_EQ(m.threshold, 0.5);
  for (const Region region : {Region::fov, Region::full}) {
    const RegionMetrics& r = m[region];
    // P = {(0,0), (0,1), (0,2), (1,1), (2,2)}; T = top-left 2x2.
    expect_counts(r.counts, 3, 2, 1, 10);
    EXPECT_DOUBLE_EQ(r[Metric::dice], 6.0 / 9.0);
    EXPECT_DOUBLE_EQ(r[Metric::iou], 3.0 / 6.0);
    EXPECT_DOUBLE_EQ(r[Metric::sensitivity], 3.0 / 4.0);
    EXPECT_DOUBLE_EQ(r[Metric::specificity], 10.0 / 12.0);
    EXPECT_DOUBLE_EQ(r[Metric::accuracy], 13.0 / 16.0);
    EXPECT_DOUBLE_EQ(r[Metric::precision], 3.0 / 5.0);
    // Vessel scores 0.9, 0.6, 0.4, 0.8 against 12 background scores (0.7, 0.55, 0.3, 0.2 x2, 0.1 x3, 0 x4):
    // they beat 12, 11, 10 and 12 of them: 45 of 48 pairs.
    EXPECT_DOUBLE_EQ(r[Metric::auc], 45.0 / 48.0);
  }
}

TEST(VesselMetrics, ThinLinesClDiceByHand) {
  // One-pixel lines are their own skeletons: T = a cross (9 pixels), P = its horizontal arm (5) plus a stray
  // 2-pixel segment. Tprec = |S(P) ∩ T| / |S(P)| = 5/7, Tsens = |S(T) ∩ P| / |S(T)| = 5/9,
  // clDice = 2·(5/7)(5/9) / (5/7 + 5/9) = 5/8.
  const at::Tensor truth = mask_from_rows({"00100", "00100", "11111", "00100", "00100"});
  const at::Tensor predicted = mask_from_rows({"11000", "00000", "11111", "00000", "00000"});
  const ImageMetrics m = evaluate_masks(predicted.to(at::kFloat), truth, at::ones({5, 5}, at::kByte));
  const RegionCounts& c = m[Region::full].counts;
  EXPECT_EQ(c.skeleton_predicted, 7);
  EXPECT_EQ(c.skeleton_predicted_in_truth, 5);
  EXPECT_EQ(c.skeleton_truth, 9);
  EXPECT_EQ(c.skeleton_truth_in_predicted, 5);
  EXPECT_DOUBLE_EQ(m[Region::full][Metric::cldice], 5.0 / 8.0);
}

TEST(VesselMetrics, EmptyTruth) {
  // Two false positives, nothing to find: sensitivity 0/0 = 1, precision 0, Tsens 0/0 = 1 but Tprec 0.
  const at::Tensor truth = at::zeros({4, 4}, at::kByte);
  const at::Tensor predicted = mask_from_rows({"0000", "0110", "0000", "0000"});
  const ImageMetrics m = evaluate_masks(predicted.to(at::kFloat), truth, at::ones({4, 4}, at::kByte));
  expect_counts(m[Region::full].counts, 0, 2, 0, 14);
  expect_metrics(m[Region::full], 0, 0, 1, 14.0 / 16.0, 14.0 / 16.0, 0, 0);
  EXPECT_TRUE(std::isnan(m[Region::full][Metric::auc]));  // one class only
}

TEST(VesselMetrics, EmptyPredictionAllTies) {
  // Everything at 0.2: nothing predicted (precision 0/0 = 1, Tprec 0/0 = 1 but Tsens 0), and every
  // (vessel, background) pair ties: AUC 1/2.
  const at::Tensor truth = mask_from_rows({"0000", "1111", "0000", "0000"});
  const ImageMetrics m = evaluate_masks(at::full({4, 4}, 0.2), truth, at::ones({4, 4}, at::kByte));
  expect_counts(m[Region::full].counts, 0, 0, 4, 12);
  expect_metrics(m[Region::full], 0, 0, 0, 1, 12.0 / 16.0, 1, 0);
  EXPECT_DOUBLE_EQ(m[Region::full][Metric::auc], 0.5);
}

TEST(VesselMetrics, BothEmpty) {
  const ImageMetrics m = evaluate_masks(at::zeros({4, 4}), at::zeros({4, 4}, at::kByte), at::ones({4, 4}, at::kByte));
  expect_counts(m[Region::full].counts, 0, 0, 0, 16);
  expect_metrics(m[Region::full], 1, 1, 1, 1, 1, 1, 1);
  EXPECT_TRUE(std::isnan(m[Region::full][Metric::auc]));
}

TEST(VesselMetrics, AllVessel) {
  const ImageMetrics m = evaluate_masks(at::ones({5, 5}), at::ones({5, 5}, at::kByte), at::ones({5, 5}, at::kByte));
  expect_counts(m[Region::full].counts, 25, 0, 0, 0);
  expect_metrics(m[Region::full], 1, 1, 1, 1, 1, 1, 1);  // specificity 0/0 = 1; S(P) = S(T) lie inside both
  EXPECT_TRUE(std::isnan(m[Region::full][Metric::auc]));
}

TEST(VesselMetrics, FieldOfViewExcludesErrors) {
  // 5x5, FOV = the inner 3x3. Inside it the prediction is perfect (TP 3: the middle row's inner part, TN 6);
  // outside, one false positive at (0,0) and two false negatives at (2,0), (2,4).
  const at::Tensor truth = mask_from_rows({"00000", "00000", "11111", "00000", "00000"});
  const at::Tensor predicted = mask_from_rows({"10000", "00000", "01110", "00000", "00000"});
  const at::Tensor fov = mask_from_rows({"00000", "01110", "01110", "01110", "00000"});
  const ImageMetrics m = evaluate_masks(predicted.to(at::kFloat), truth, fov);
  expect_counts(m[Region::fov].counts, 3, 0, 0, 6);
  expect_metrics(m[Region::fov], 1, 1, 1, 1, 1, 1, 1);
  // Full image: TP 3, FP 1, FN 2, TN 19. Skeletons are the thin masks themselves: S(P) = 4 pixels, 3 in T;
  // S(T) = 5, 3 in P: Tprec 3/4, Tsens 3/5, clDice = 2·(9/20) / (27/20) = 2/3.
  expect_counts(m[Region::full].counts, 3, 1, 2, 19);
  expect_metrics(m[Region::full], 6.0 / 9.0, 3.0 / 6.0, 3.0 / 5.0, 19.0 / 20.0, 22.0 / 25.0, 3.0 / 4.0, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m[Region::fov][Metric::auc], 1.0);
  // Full-image AUC with scores 0/1: vessels 1,1,1,0,0 against background 1 and nineteen 0s:
  // 3·(19 + 0.5) + 2·(0.5·19) = 77.5 of 100 pairs.
  EXPECT_DOUBLE_EQ(m[Region::full][Metric::auc], 77.5 / 100.0);
}

// Histograms from (bin, pixels) pairs.
ScoreHistogram histogram(const std::vector<std::pair<int, int>>& vessel,
                         const std::vector<std::pair<int, int>>& background) {
  ScoreHistogram h;
  for (const auto& [bin, n] : vessel) h.vessel[bin] += n;
  for (const auto& [bin, n] : background) h.background[bin] += n;
  return h;
}

TEST(VesselMetrics, AProbabilityAtTheThresholdIsBackgroundAsInSa2VA) {
  // Sa2VA's `sigmoid() > 0.5`: 0.5 itself is not vessel, the next double above it is.
  EXPECT_FALSE(is_vessel(0.5, 0.5));
  EXPECT_TRUE(is_vessel(std::nextafter(0.5, 1.0), 0.5));
  EXPECT_TRUE(is_vessel(1.0, 0.99));
  EXPECT_FALSE(is_vessel(0.0, 0.0));
  const at::Tensor probability = at::tensor({0.2, 0.5, 0.5000001, 0.9}, at::kDouble);
  EXPECT_TRUE(at::equal(vessel_mask(probability, 0.5), at::tensor({0, 0, 1, 1}, at::kByte)));
  const ImageMetrics m =
      evaluate_image("tie", probability.reshape({1, 4}), at::tensor({0, 1, 1, 1}, at::kByte).reshape({1, 4}),
                     at::ones({1, 4}, at::kByte), 0.5)
          .metrics;
  expect_counts(m[Region::full].counts, 2, 0, 1, 1);
}

TEST(VesselMetrics, ConfusionCountsAsValidationUsesThem) {
  // P = {0, 1} (0.7, 0.6 > 0.5), T = {0, 2}: TP 1, FP 1, FN 1, TN 1; dice 2·1 / (2 + 2).
  const at::Tensor p = at::tensor({0.7, 0.6, 0.5, 0.1}, at::kFloat), t = at::tensor({1, 0, 1, 0}, at::kByte);
  expect_counts(confusion_counts(p, t, at::Tensor(), 0.5), 1, 1, 1, 1);
  EXPECT_DOUBLE_EQ(metrics_from_counts(confusion_counts(p, t, at::Tensor(), 0.5), 0)[Metric::dice], 0.5);
  // Region without pixel 2: P = {0, 1}, T = {0} → 2·1 / (2 + 1).
  const RegionCounts in_region = confusion_counts(p, t, at::tensor({1, 1, 0, 1}, at::kByte), 0.5);
  expect_counts(in_region, 1, 1, 0, 1);
  EXPECT_DOUBLE_EQ(metrics_from_counts(in_region, 0)[Metric::dice], 2.0 / 3.0);
  // Nothing to find, nothing found: 1; all found: 1; nothing found of everything: 0.
  const at::Tensor zeros = at::zeros({3, 3}), ones = at::ones({3, 3}, at::kByte);
  EXPECT_DOUBLE_EQ(metrics_from_counts(confusion_counts(zeros, zeros, at::Tensor(), 0.5), 0)[Metric::dice], 1.0);
  EXPECT_DOUBLE_EQ(metrics_from_counts(confusion_counts(at::ones({3, 3}), ones, at::Tensor(), 0.5), 0)[Metric::dice], 1.0);
  EXPECT_DOUBLE_EQ(metrics_from_counts(confusion_counts(zeros, ones, at::Tensor(), 0.5), 0)[Metric::dice], 0.0);
  // The same counts as the per-image metrics of vesseltune-eval.
  const ImageEvaluation a = hand::evaluate("a");
  const RegionCounts counted = confusion_counts(hand::probabilities("a"), hand::truth("a"), at::Tensor(), 0.5);
  expect_counts(counted, a.metrics[Region::full].counts.tp, a.metrics[Region::full].counts.fp,
                a.metrics[Region::full].counts.fn, a.metrics[Region::full].counts.tn);
  EXPECT_THROW(confusion_counts(zeros, at::zeros({3, 4}), at::Tensor(), 0.5), Error);
}

TEST(VesselMetrics, AucFromHistograms) {
  EXPECT_DOUBLE_EQ(auc(histogram({{60000, 3}}, {{100, 5}})), 1.0);    // perfect separation
  EXPECT_DOUBLE_EQ(auc(histogram({{100, 3}}, {{60000, 5}})), 0.0);    // reversed
  EXPECT_DOUBLE_EQ(auc(histogram({{777, 3}}, {{777, 5}})), 0.5);      // all ties
  // Vessels at bins 10, 20, 30; background at 5, 20, 20, 40: they beat 1, 1 + 2·½, 3 of 4: 6 of 12 pairs.
  EXPECT_DOUBLE_EQ(auc(histogram({{10, 1}, {20, 1}, {30, 1}}, {{5, 1}, {20, 2}, {40, 1}})), 6.0 / 12.0);
  EXPECT_TRUE(std::isnan(auc(histogram({{10, 1}}, {}))));
  EXPECT_TRUE(std::isnan(auc(histogram({}, {{10, 1}}))));
}

TEST(VesselMetrics, AucTiesWithinOneQuantisationStep) {
  // 0.5 and 0.5 + 1e-7 fall in the same bin (round(p · 65535) = 32768 for both): a tie, not a win.
  const at::Tensor probability = at::tensor({0.5 + 1e-7, 0.5}, at::kDouble).reshape({1, 2});
  const at::Tensor truth = at::tensor({1, 0}, at::kByte).reshape({1, 2});
  const ImageMetrics m = evaluate_image("tie", probability, truth, at::ones({1, 2}, at::kByte), 0.5).metrics;
  EXPECT_DOUBLE_EQ(m[Region::full][Metric::auc], 0.5);
}

TEST(VesselMetrics, PerImageAndPooledOverTwoImages) {
  MetricsAccumulator accumulator;
  accumulator.add(hand::evaluate("a"));
  accumulator.add(hand::evaluate("b"));
  const MetricsSummary summary = accumulator.summary();
  EXPECT_EQ(summary.images, 2);
  EXPECT_EQ(summary.threshold, 0.5);
  const RegionSummary& full = summary.regions[static_cast<int>(Region::full)];
  expect_counts(full.counts, 6, 3, 2, 21);
  const MetricAggregate& dice = full.metrics[static_cast<int>(Metric::dice)];
  // Per image: 6/9 and 6/8; mean 17/24, sd = |6/8 - 6/9| / sqrt(2). Pooled: 12 / (12 + 3 + 2) = 12/17.
  EXPECT_DOUBLE_EQ(dice.mean, 17.0 / 24.0);
  EXPECT_NEAR(dice.sd, (1.0 / 12.0) / std::sqrt(2.0), 1e-15);
  EXPECT_DOUBLE_EQ(dice.pooled, 12.0 / 17.0);
  EXPECT_EQ(dice.images_used, 2);
  const MetricAggregate& sensitivity = full.metrics[static_cast<int>(Metric::sensitivity)];
  EXPECT_DOUBLE_EQ(sensitivity.mean, 0.75);
  EXPECT_DOUBLE_EQ(sensitivity.sd, 0.0);
  EXPECT_DOUBLE_EQ(sensitivity.pooled, 6.0 / 8.0);
  // AUC per image: 45/48 and 40/48 (b: the three 1s beat eleven 0s and tie the background 1; the vessel 0 ties
  // eleven 0s). Pooled: vessels 0.9, 0.6, 0.4, 0.8, 1, 1, 1, 0 against 24 background scores (fifteen 0s, three
  // 0.1, two 0.2, 0.3, 0.55, 0.7, 1) win 23 + 22 + 21 + 23 + 3·23.5 + 7.5 = 167 of 192 pairs.
  const MetricAggregate& area = full.metrics[static_cast<int>(Metric::auc)];
  EXPECT_DOUBLE_EQ(area.mean, (45.0 / 48.0 + 40.0 / 48.0) / 2.0);
  EXPECT_DOUBLE_EQ(area.pooled, 167.0 / 192.0);
}

TEST(VesselMetrics, AggregationSkipsUndefinedAuc) {
  MetricsAccumulator accumulator;
  accumulator.add(hand::evaluate("a"));
  accumulator.add(evaluate_image("empty", at::zeros({4, 4}), at::zeros({4, 4}, at::kByte), at::ones({4, 4}, at::kByte),
                                 0.5));
  const MetricsSummary summary = accumulator.summary();
  const MetricAggregate& area = summary.regions[static_cast<int>(Region::fov)].metrics[static_cast<int>(Metric::auc)];
  EXPECT_EQ(area.images_used, 1);
  EXPECT_DOUBLE_EQ(area.mean, 45.0 / 48.0);
  EXPECT_TRUE(std::isnan(area.sd));  // one image
  const MetricAggregate& dice = summary.regions[static_cast<int>(Region::fov)].metrics[static_cast<int>(Metric::dice)];
  EXPECT_EQ(dice.images_used, 2);
  EXPECT_DOUBLE_EQ(dice.mean, (6.0 / 9.0 + 1.0) / 2.0);
}

TEST(VesselMetrics, PackUnpackRoundTrip) {
  const ImageMetrics a = hand::evaluate("a").metrics, b = hand::evaluate("b").metrics;
  std::vector<double> packed;
  pack(a, packed);
  pack(b, packed);
  ASSERT_EQ(packed.size(), 2 * kPackedImageSize);
  const ImageMetrics back = unpack("b", packed, kPackedImageSize);
  EXPECT_EQ(back.name, "b");
  EXPECT_EQ(back.threshold, b.threshold);
  for (int r = 0; r < kRegionCount; ++r) {
    for (const CountField& field : count_fields()) {
      EXPECT_EQ(back.regions[r].counts.*field.member, b.regions[r].counts.*field.member) << field.name;
    }
    for (int m = 0; m < kMetricCount; ++m) EXPECT_EQ(back.regions[r].values[m], b.regions[r].values[m]);
  }
  EXPECT_THROW(unpack("c", packed, kPackedImageSize + 1), Error);
}

TEST(VesselMetrics, BadInputIsNamed) {
  const at::Tensor ones = at::ones({4, 4}, at::kByte);
  try {
    evaluate_image("im07", at::full({4, 4}, 1.5), ones, ones, 0.5);
    FAIL() << "a probability above 1 was accepted";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("im07"), std::string::npos) << error.what();
  }
  EXPECT_THROW(evaluate_image("fov", at::zeros({4, 4}), ones, at::zeros({4, 4}, at::kByte), 0.5), Error);
  EXPECT_THROW(evaluate_image("shape", at::zeros({4, 5}), ones, ones, 0.5), Error);
  EXPECT_THROW(evaluate_image("values", at::zeros({4, 4}), ones * 2, ones, 0.5), Error);
  MetricsAccumulator accumulator;
  accumulator.add_image(hand::evaluate("a").metrics);
  ImageMetrics other = hand::evaluate("b").metrics;
  other.threshold = 0.4;
  EXPECT_THROW(accumulator.add_image(other), Error);
}

}  // namespace
}  // namespace vesseltune::metrics
