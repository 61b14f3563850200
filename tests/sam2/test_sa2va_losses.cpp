// The Sa2VA mask losses against a reference written out in double precision with plain loops (bilinear
// sampling with zero padding, uncertainty ranking, mmdet's BCE and naive dice with their normalisers), fed the
// same random points; clDice against hand-computed cases.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <vector>

#include "vesseltune/model/sa2va_losses.h"

namespace vesseltune::model {
namespace {

using Map = std::vector<std::vector<double>>;  // [H][W]

Map to_map(const at::Tensor& t) {
  at::Tensor d = t.to(at::kDouble).contiguous();
  Map m(d.size(0), std::vector<double>(d.size(1)));
  for (int64_t y = 0; y < d.size(0); ++y)
    for (int64_t x = 0; x < d.size(1); ++x) m[y][x] = d[y][x].item<double>();
  return m;
}

// grid_sample, bilinear, align_corners false, zeros outside: pixel coordinate = p · size − 0.5.
double sample(const Map& m, double px, double py) {
  const int64_t h = m.size(), w = m[0].size();
  const double ix = px * w - 0.5, iy = py * h - 0.5;
  const int64_t x0 = static_cast<int64_t>(std::floor(ix)), y0 = static_cast<int64_t>(std::floor(iy));
  double v = 0;
  for (int64_t dy = 0; dy <= 1; ++dy) {
    for (int64_t dx = 0; dx <= 1; ++dx) {
      const int64_t x = x0 + dx, y = y0 + dy;
      if (x < 0 || y < 0 || x >= w || y >= h) continue;
      v += (dx ? ix - x0 : 1 - (ix - x0)) * (dy ? iy - y0 : 1 - (iy - y0)) * m[y][x];
    }
  }
  return v;
}

struct Reference {
  double loss_mask = 0, loss_dice = 0;
};

// Sa2VA's sampled losses, or the dense ones; weights (FOV) optional.
Reference reference_losses(const at::Tensor& logits, const at::Tensor& targets, const at::Tensor& fov,
                           const MaskLossOptions& o, const PointDraws& draws) {
  const double eps = std::numeric_limits<float>::epsilon();
  const int64_t n = logits.size(0);
  double bce_sum = 0, dice_sum = 0, weight_sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    Map lg = to_map(logits[i]), tg = to_map(targets[i]);
    Map fv = fov.defined() ? to_map(fov[i]) : Map();
    std::vector<std::array<double, 2>> points;
    if (o.dense) {
      const double h = lg.size(), w = lg[0].size();
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x) points.push_back({(x + 0.5) / w, (y + 0.5) / h});  // pixel centres
    } else {
      at::Tensor cand = draws.candidates[i].to(at::kDouble), uni = draws.uniform[i].to(at::kDouble);
      std::vector<std::pair<double, int64_t>> ranked;
      for (int64_t c = 0; c < cand.size(0); ++c) {
        ranked.push_back({-std::abs(sample(lg, cand[c][0].item<double>(), cand[c][1].item<double>())), c});
      }
      std::stable_sort(ranked.begin(), ranked.end(), [](auto a, auto b) { return a.first > b.first; });
      for (int64_t k = 0; k < o.num_uncertain(); ++k) {
        const int64_t c = ranked[k].second;
        points.push_back({cand[c][0].item<double>(), cand[c][1].item<double>()});
      }
      for (int64_t k = 0; k < uni.size(0); ++k) points.push_back({uni[k][0].item<double>(), uni[k][1].item<double>()});
    }
    double inter = 0, psum = 0, tsum = 0;
    for (auto [px, py] : points) {
      const double z = sample(lg, px, py), t = sample(tg, px, py), w = fov.defined() ? sample(fv, px, py) : 1.0;
      const double bce = std::max(z, 0.0) - z * t + std::log1p(std::exp(-std::abs(z)));
      const double p = 1 / (1 + std::exp(-z));
      bce_sum += w * bce;
      weight_sum += w;
      inter += w * p * t;
      psum += w * p;
      tsum += w * t;
    }
    dice_sum += 1 - (2 * inter + 1) / (psum + tsum + 1);
  }
  Reference r;
  double bce_norm = o.dense ? static_cast<double>(logits.numel()) : n * o.num_points + 1e-4 + eps;
  double dice_norm = o.dense ? n : n + 1e-4 + eps;
  if (fov.defined()) bce_norm = weight_sum + 1e-4 + eps;
  r.loss_mask = o.mask_weight * bce_sum / bce_norm;
  r.loss_dice = o.dice_weight * dice_sum / dice_norm;
  return r;
}

struct LossCase : ::testing::Test {
  void SetUp() override {
    at::manual_seed(11);
    logits = 3.0 * at::randn({3, 16, 16});
    targets = (at::randn({3, 16, 16}) > 0.3).to(at::kFloat);
    options.num_points = 40;  // 120 candidates, 30 most uncertain + 10 uniform
  }
  at::Tensor logits, targets;
  MaskLossOptions options;
};

TEST(Sa2vaLossOptions, DefaultsAreSa2va) {
  MaskLossOptions o;
  EXPECT_EQ(o.num_points, 12544);
  EXPECT_EQ(o.num_candidates(), 37632);
  EXPECT_EQ(o.num_uncertain(), 9408);
  EXPECT_EQ(o.mask_weight, 2.0);
  EXPECT_EQ(o.dice_weight, 0.5);
  EXPECT_FALSE(o.dense);
  EXPECT_EQ(o.cldice_weight, 0.0);
}

TEST_F(LossCase, PointSampleMatchesBilinearWithZeroPadding) {
  at::Tensor points = at::rand({3, 50, 2});
  points[0][0][0] = 0.0f;  // a corner: three of four neighbours outside
  points[0][0][1] = 0.0f;
  at::Tensor got = point_sample(logits, points);
  for (int64_t i = 0; i < 3; ++i) {
    Map m = to_map(logits[i]);
    for (int64_t k = 0; k < 50; ++k) {
      EXPECT_NEAR(got[i][k].item<double>(), sample(m, points[i][k][0].item<double>(), points[i][k][1].item<double>()),
                  1e-5);
    }
  }
}

TEST_F(LossCase, SampledLossesMatchDoubleReference) {
  PointDraws draws = draw_points(3, options, at::TensorOptions().dtype(at::kFloat));
  MaskLosses got = sa2va_mask_losses(logits, targets, options, draws);
  Reference ref = reference_losses(logits, targets, at::Tensor(), options, draws);
  EXPECT_NEAR(got.loss_mask.item<double>(), ref.loss_mask, 1e-5 * ref.loss_mask);
  EXPECT_NEAR(got.loss_dice.item<double>(), ref.loss_dice, 1e-5 * ref.loss_dice);
  EXPECT_EQ(got.loss_cldice.item<double>(), 0.0);
}

TEST_F(LossCase, UncertainPointsAreTheMostUncertainCandidatesThenTheUniformOnes) {
  PointDraws draws = draw_points(3, options, at::TensorOptions().dtype(at::kFloat));
  at::Tensor points = uncertain_points(logits, draws, options);
  ASSERT_EQ(points.sizes(), (std::vector<int64_t>{3, 40, 2}));
  EXPECT_TRUE(at::equal(points.slice(1, 30), draws.uniform));
  at::Tensor chosen = point_sample(logits, points.slice(1, 0, 30)).abs();
  at::Tensor all = point_sample(logits, draws.candidates).abs();
  for (int64_t i = 0; i < 3; ++i) {  // the 30 chosen have the 30 smallest |logit| among the candidates
    at::Tensor sorted = std::get<0>(all[i].sort());
    EXPECT_TRUE(at::allclose(std::get<0>(chosen[i].sort()), sorted.slice(0, 0, 30)));
  }
}

TEST_F(LossCase, DenseAndFovLossesMatchDoubleReference) {
  at::Tensor fov = at::zeros({3, 16, 16});
  fov.slice(1, 2, 14).slice(2, 3, 13).fill_(1.0f);
  for (bool dense : {true, false}) {
    options.dense = dense;
    PointDraws draws = draw_points(3, options, at::TensorOptions().dtype(at::kFloat));
    for (bool with_fov : {false, true}) {
      at::Tensor f = with_fov ? fov : at::Tensor();
      MaskLosses got = sa2va_mask_losses(logits, targets, options, draws, f);
      Reference ref = reference_losses(logits, targets, f, options, draws);
      EXPECT_NEAR(got.loss_mask.item<double>(), ref.loss_mask, 1e-5 * ref.loss_mask) << dense << with_fov;
      EXPECT_NEAR(got.loss_dice.item<double>(), ref.loss_dice, 1e-5 * ref.loss_dice) << dense << with_fov;
    }
  }
}

TEST_F(LossCase, GradientReachesLogitsOnlyThroughSampledPoints) {
  at::Tensor x = logits.clone().requires_grad_(true);
  sa2va_mask_losses(x, targets, options).total().backward();
  const int64_t touched = (x.grad() != 0).sum().item<int64_t>();
  EXPECT_GT(touched, 0);
  EXPECT_LE(touched, 3 * 40 * 4);  // at most four pixels per sampled point
}

TEST(Sa2vaClDice, HandComputedCases) {
  MaskLossOptions o;
  o.dense = true;
  o.mask_weight = 0;
  o.dice_weight = 0;
  o.cldice_weight = 1.0;
  o.cldice_iterations = 3;
  // A one-pixel line is its own soft skeleton (erosion removes it at once).
  at::Tensor line = at::zeros({1, 9, 9});
  line[0][4].slice(0, 1, 8).fill_(1.0f);
  EXPECT_TRUE(at::equal(soft_skeleton(line, 3), line));
  // Logits ±40 give probabilities 0/1 to float precision: a perfect prediction scores 0.
  at::Tensor perfect = 80.0 * line - 40.0;
  EXPECT_NEAR(sa2va_mask_losses(perfect, line, o).loss_cldice.item<double>(), 0.0, 1e-6);
  // The line one row off: precision = sensitivity = 1 / (7 + 1), clDice loss = 1 − 1/8.
  at::Tensor shifted = 80.0 * at::roll(line, {1}, {1}) - 40.0;
  EXPECT_NEAR(sa2va_mask_losses(shifted, line, o).loss_cldice.item<double>(), 1.0 - 1.0 / 8.0, 1e-6);
}

TEST(Sa2vaTargets, NearestResize) {
  at::Tensor masks = at::arange(16, at::kFloat).reshape({1, 4, 4});
  at::Tensor resized = resize_masks_nearest(masks, 2);  // source index floor(dst · 2): rows/cols 0 and 2
  EXPECT_TRUE(at::equal(resized, at::tensor({0.0f, 2.0f, 8.0f, 10.0f}).reshape({1, 2, 2})));
}

}  // namespace
}  // namespace vesseltune::model
