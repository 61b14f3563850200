#include "vesseltune/model/sa2va_losses.h"

#include <c10/core/GradMode.h>

#include <limits>

#include "vesseltune/core/check.h"
#include "vesseltune/model/precision.h"

namespace vesseltune::model {
namespace {

// mmdet's weight_reduce_loss divides by (avg_factor + float32 epsilon); Sa2VA's avg_factors carry + 1e-4.
constexpr double kFloatEps = std::numeric_limits<float>::epsilon();

// BCE and dice of logits against targets, both [n, M], with optional weights [n, M]; Σ BCE / bce_norm and
// Σ_masks (1 − dice) / dice_norm, before the loss weights.
std::pair<at::Tensor, at::Tensor> bce_and_dice(const at::Tensor& logits, const at::Tensor& targets,
                                               const at::Tensor& weights, double bce_norm, double dice_norm) {
  at::Tensor bce = at::binary_cross_entropy_with_logits(logits, targets, {}, {}, at::Reduction::None);
  at::Tensor probs = at::sigmoid(logits);
  at::Tensor weighted_targets = targets;  // every sum below carries the weight once
  if (weights.defined()) {
    bce = bce * weights;
    probs = probs * weights;
    weighted_targets = targets * weights;
  }
  at::Tensor dice =
      1.0 - (2.0 * (probs * targets).sum(1) + 1.0) / (probs.sum(1) + weighted_targets.sum(1) + 1.0);
  return {bce.sum() / bce_norm, dice.sum() / dice_norm};
}

at::Tensor soft_erode(const at::Tensor& x) {  // [n, 1, H, W]
  at::Tensor vertical = -at::max_pool2d(-x, {3, 1}, {1, 1}, {1, 0});
  at::Tensor horizontal = -at::max_pool2d(-x, {1, 3}, {1, 1}, {0, 1});
  return at::min(vertical, horizontal);
}

at::Tensor soft_dilate(const at::Tensor& x) { return at::max_pool2d(x, {3, 3}, {1, 1}, {1, 1}); }

at::Tensor soft_open(const at::Tensor& x) { return soft_dilate(soft_erode(x)); }

// 1 − clDice per mask (smoothing 1), maps [n, H, W] in [0, 1].
at::Tensor soft_cldice(const at::Tensor& probs, const at::Tensor& targets, int64_t iterations) {
  at::Tensor skel_pred = soft_skeleton(probs, iterations);
  at::Tensor skel_true = soft_skeleton(targets, iterations);
  at::Tensor topology_precision = ((skel_pred * targets).sum({1, 2}) + 1.0) / (skel_pred.sum({1, 2}) + 1.0);
  at::Tensor topology_sensitivity = ((skel_true * probs).sum({1, 2}) + 1.0) / (skel_true.sum({1, 2}) + 1.0);
  return 1.0 - 2.0 * topology_precision * topology_sensitivity / (topology_precision + topology_sensitivity);
}

}  // namespace

PointDraws draw_points(int64_t n, const MaskLossOptions& options, const at::TensorOptions& tensor_options) {
  return {at::rand({n, options.num_candidates(), 2}, tensor_options),
          at::rand({n, options.num_points - options.num_uncertain(), 2}, tensor_options)};
}

at::Tensor point_sample(const at::Tensor& maps, const at::Tensor& points) {
  VT_CHECK(maps.dim() == 3 && points.dim() == 3 && points.size(0) == maps.size(0) && points.size(2) == 2,
           "point_sample: maps [n, H, W] and points [n, P, 2], got ", maps.sizes(), " and ", points.sizes());
  at::Tensor grid = (2.0 * points - 1.0).unsqueeze(2).to(maps.scalar_type());  // [n, P, 1, 2]
  // interpolation 0 = bilinear, padding 0 = zeros, align_corners false: mmcv's point_sample.
  return at::grid_sampler(maps.unsqueeze(1), grid, 0, 0, false).squeeze(3).squeeze(1);
}

at::Tensor uncertain_points(const at::Tensor& logits, const PointDraws& draws, const MaskLossOptions& options) {
  const int64_t n = logits.size(0), k_uncertain = options.num_uncertain();
  VT_CHECK(draws.candidates.size(0) == n && draws.candidates.size(1) == options.num_candidates(),
           "uncertain_points: candidates ", draws.candidates.sizes(), " for ", n, " masks and ",
           options.num_candidates(), " candidates");
  VT_CHECK(draws.uniform.size(0) == n && draws.uniform.size(1) == options.num_points - k_uncertain,
           "uncertain_points: uniform draws ", draws.uniform.sizes(), " for ", n, " masks and ",
           options.num_points - k_uncertain, " points");
  c10::NoGradGuard no_grad;
  at::Tensor uncertainty = -point_sample(at_least_fp32(logits), draws.candidates).abs();
  at::Tensor index = std::get<1>(uncertainty.topk(k_uncertain, 1));
  at::Tensor chosen = draws.candidates.gather(1, index.unsqueeze(2).expand({n, k_uncertain, 2}));
  return at::cat({chosen, draws.uniform.to(chosen.scalar_type())}, 1);
}

at::Tensor resize_masks_nearest(const at::Tensor& masks, int64_t size) {
  VT_CHECK(masks.dim() == 3, "resize_masks_nearest: masks must be [n, H, W], got ", masks.sizes());
  return at::upsample_nearest2d(masks.to(at::kFloat).unsqueeze(1), {size, size}).squeeze(1);
}

at::Tensor soft_skeleton(const at::Tensor& maps, int64_t iterations) {
  at::Tensor x = maps.unsqueeze(1);
  at::Tensor skeleton = at::relu(x - soft_open(x));
  for (int64_t i = 0; i < iterations; ++i) {
    x = soft_erode(x);
    at::Tensor delta = at::relu(x - soft_open(x));
    skeleton = skeleton + at::relu(delta - skeleton * delta);
  }
  return skeleton.squeeze(1);
}

MaskLosses sa2va_mask_losses(const at::Tensor& logits, const at::Tensor& targets, const MaskLossOptions& options,
                             const PointDraws& draws, const at::Tensor& fov) {
  VT_CHECK(logits.dim() == 3 && logits.sizes() == targets.sizes(), "Sa2VA losses: logits ", logits.sizes(),
           " and targets ", targets.sizes(), " must both be [n, h, w]");
  VT_CHECK(!fov.defined() || fov.sizes() == logits.sizes(), "Sa2VA losses: FOV ", fov.sizes(), " vs logits ",
           logits.sizes());
  const int64_t n = logits.size(0);
  at::Tensor x = at_least_fp32(logits), t = targets.to(x.scalar_type());
  at::Tensor f = fov.defined() ? fov.to(at::kFloat) : at::Tensor();

  at::Tensor p_logits, p_targets, p_weights;
  double bce_norm = 0, dice_norm = 0;
  if (options.dense) {
    p_logits = x.flatten(1);
    p_targets = t.flatten(1);
    if (f.defined()) p_weights = f.flatten(1);
    bce_norm = static_cast<double>(p_logits.numel());  // mmdet 'mean' without avg_factor
    dice_norm = static_cast<double>(n);
  } else {
    at::Tensor points = uncertain_points(x, draws, options);
    p_logits = point_sample(x, points);
    {
      c10::NoGradGuard no_grad;
      p_targets = point_sample(t, points);
      if (f.defined()) p_weights = point_sample(f, points);
    }
    bce_norm = static_cast<double>(n * options.num_points) + 1e-4 + kFloatEps;
    dice_norm = static_cast<double>(n) + 1e-4 + kFloatEps;
  }
  if (p_weights.defined()) bce_norm = p_weights.sum().item<double>() + 1e-4 + kFloatEps;
  auto [bce, dice] = bce_and_dice(p_logits, p_targets, p_weights, bce_norm, dice_norm);

  MaskLosses losses;
  losses.loss_mask = options.mask_weight * bce;
  losses.loss_dice = options.dice_weight * dice;
  if (options.cldice_weight > 0) {
    at::Tensor probs = at::sigmoid(x), truth = t;
    if (f.defined()) {
      probs = probs * f;
      truth = truth * f;
    }
    losses.loss_cldice = options.cldice_weight * soft_cldice(probs, truth, options.cldice_iterations).mean();
  } else {
    losses.loss_cldice = at::zeros({}, x.options());
  }
  return losses;
}

MaskLosses sa2va_mask_losses(const at::Tensor& logits, const at::Tensor& targets, const MaskLossOptions& options,
                             const at::Tensor& fov) {
  PointDraws draws;
  if (!options.dense) draws = draw_points(logits.size(0), options, logits.options().dtype(at_least_fp32(logits.scalar_type())));
  return sa2va_mask_losses(logits, targets, options, draws, fov);
}

}  // namespace vesseltune::model
