#pragma once
// Probability maps of a trained Sa2VA for whole images at their native resolution. The conversation is the
// evaluation one: the first vessel question ("<image>\nPlease segment the blood vessels in this image.") with the
// answer "Sure, [SEG]." teacher-forced, the [SEG] state prompting SAM2 (a model that would answer otherwise still
// gets its mask scored); or, with `generate`, the answer the model generates itself (predictor.h), its first [SEG]'s
// mask, and an empty mask (counted) when it generates none. Two modes:
//   resize  the whole image through the model's inputs (InternVL tiles + SAM2's 1024² resize), the mask logits
//           resized back as Sa2VA does (sam2::probabilities_from_logits) — how the model was trained;
//   tile    overlapping windows of tile_size² native pixels, each run as an image of its own, blended with weights
//           that ramp linearly across the overlaps (a partition of unity where windows meet): large images (HRF
//           3504×2336, FIVES 2048²) keep their fine vessels instead of being shrunk to 1024².
#include <ATen/ATen.h>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>
#include "vesseltune/data/shard_format.h"
#include "vesseltune/eval/predictor.h"
#include "vesseltune/setup/trained_model.h"

namespace vesseltune::eval {

struct SegmenterOptions {
  std::string mode = "resize";  // resize | tile
  int tile_size = 1024;         // tile mode: window side in native pixels
  int tile_overlap = 256;       // tile mode: pixels shared by neighbouring windows
  bool generate = false;        // the model's own greedy answer instead of the teacher-forced one
};

// Window starts along one axis of LENGTH: windows of SIZE (the whole axis when shorter) overlapping by at least
// OVERLAP, evenly spread, the first at 0 and the last ending at LENGTH.
std::vector<int> window_starts(int length, int size, int overlap);
// Blend weight along one axis of a window [START, START + SIZE) of an axis of LENGTH: 1 inside, rising linearly
// over the first OVERLAP pixels and falling over the last where the window has a neighbour (not at the image's
// border). Float [SIZE].
at::Tensor window_weights(int start, int size, int length, int overlap);

class Segmenter {
 public:
  // Runs on MODEL's device in its dtype.
  Segmenter(const setup::TrainedModel& model, SegmenterOptions options);
  // Float [H, W] on the CPU, in [0, 1].
  at::Tensor probability(const data::SampleRecord& record);  // not const: a forward pass
  // With `generate`: images (windows in tile mode) whose answer held no [SEG], so far.
  int64_t answers_without_seg() const { return answers_without_seg_; }

 private:
  at::Tensor whole(const data::SampleRecord& record);
  at::Tensor tiled(const data::SampleRecord& record);

  const setup::TrainedModel& model_;
  model::Sa2VAModel net_;  // model_.model: the same module, callable
  SegmenterOptions options_;
  data::ModelInputOptions inputs_;
  std::optional<Predictor> predictor_;  // with `generate`
  int64_t answers_without_seg_ = 0;
};

}  // namespace vesseltune::eval
