#pragma once
// Sa2VA's mask losses. Default = Sa2VA exactly (mmdet losses on Mask2Former-style importance-sampled points):
//   candidates: 3·K uniform points per mask; keep the 0.75·K with the largest uncertainty −|logit| (logits
//   sampled bilinearly, align_corners false, zeros outside) plus 0.25·K fresh uniform points (K = 12,544);
//   loss_mask = 2.0 · Σ BCE-with-logits(points) / (n·K + 1e-4)
//   loss_dice = 0.5 · Σ_masks [1 − (2 Σ σ(p)·t + 1) / (Σ σ(p) + Σ t + 1)] / (n + 1e-4)
// where the targets are the ground-truth masks (nearest-resized to the logits' 256²) sampled at the same points.
// (mmdet also adds float32 epsilon to the denominators; kept.) Options beyond Sa2VA, off by default, for thin
// vessels: the dense loss on every pixel instead of the points, a field-of-view mask that zeroes the loss
// outside the FOV, and a soft clDice term (Shit et al., CVPR 2021) on the dense maps.

#include <ATen/ATen.h>

namespace vesseltune::model {

struct MaskLossOptions {
  double mask_weight = 2.0;
  double dice_weight = 0.5;
  int64_t num_points = 12544;  // 112²
  double oversample_ratio = 3.0;
  double importance_sample_ratio = 0.75;
  bool dense = false;          // BCE and dice over all pixels (no point sampling)
  double cldice_weight = 0.0;  // > 0 adds weight · soft clDice as loss_cldice
  int64_t cldice_iterations = 10;  // soft-skeleton iterations (about the widest vessel radius in pixels)

  int64_t num_candidates() const { return static_cast<int64_t>(num_points * oversample_ratio); }
  int64_t num_uncertain() const { return static_cast<int64_t>(importance_sample_ratio * num_points); }
};

// The random draws of one importance sampling, in [0, 1)² as (x, y): given explicitly so a test can replay them.
struct PointDraws {
  at::Tensor candidates;  // [n, num_candidates, 2]
  at::Tensor uniform;     // [n, num_points - num_uncertain, 2]
};
PointDraws draw_points(int64_t n, const MaskLossOptions& options, const at::TensorOptions& tensor_options);

// maps [n, H, W] sampled at points [n, P, 2] (x, y in [0, 1]): bilinear, align_corners false, zeros outside.
at::Tensor point_sample(const at::Tensor& maps, const at::Tensor& points);

// The K points of one importance sampling of logits [n, H, W]: [n, K, 2].
at::Tensor uncertain_points(const at::Tensor& logits, const PointDraws& draws, const MaskLossOptions& options);

// Ground-truth masks [n, H, W] (any dtype) → float32 [n, size, size], nearest neighbour.
at::Tensor resize_masks_nearest(const at::Tensor& masks, int64_t size);

// Soft skeleton of maps in [0, 1] ([n, H, W]) by iterated min/max pooling.
at::Tensor soft_skeleton(const at::Tensor& maps, int64_t iterations);

struct MaskLosses {
  at::Tensor loss_mask;    // weighted BCE
  at::Tensor loss_dice;    // weighted dice
  at::Tensor loss_cldice;  // weighted soft clDice; a zero scalar when off
  at::Tensor total() const { return loss_mask + loss_dice + loss_cldice; }
};

// logits [n, h, w] (float32), targets [n, h, w] 0/1 (already at the logits' size), fov [n, h, w] 0/1 or
// undefined. Sampled losses use `draws` (from draw_points, or given by a test).
MaskLosses sa2va_mask_losses(const at::Tensor& logits, const at::Tensor& targets, const MaskLossOptions& options,
                             const PointDraws& draws, const at::Tensor& fov = at::Tensor());
// The same with fresh draws from the default generator.
MaskLosses sa2va_mask_losses(const at::Tensor& logits, const at::Tensor& targets, const MaskLossOptions& options,
                             const at::Tensor& fov = at::Tensor());

}  // namespace vesseltune::model
