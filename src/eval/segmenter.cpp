#include "vesseltune/eval/segmenter.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "vesseltune/core/check.h"
#include "vesseltune/data/image_ops.h"
#include "vesseltune/data/model_inputs.h"
#include "vesseltune/model/sam2/grounding_encoder.h"
#include "vesseltune/setup/model_setup.h"

namespace vesseltune::eval {

std::vector<int> window_starts(int length, int size, int overlap) {
  VT_CHECK(length > 0 && size > 0 && overlap >= 0 && overlap < size, "tiling: window ", size, " with overlap ",
           overlap, " over ", length, " pixels");
  if (length <= size) return {0};
  const int windows = static_cast<int>(std::ceil(static_cast<double>(length - overlap) / (size - overlap)));
  std::vector<int> starts;
  for (int i = 0; i < windows; ++i) {
    starts.push_back(static_cast<int>(std::lround(static_cast<double>(i) * (length - size) / (windows - 1))));
  }
  return starts;
}

at::Tensor window_weights(int start, int size, int length, int overlap) {
  at::Tensor weights = at::ones({size}, at::kFloat);
  if (overlap == 0) return weights;
  float* w = weights.data_ptr<float>();
  for (int i = 0; i < size; ++i) {
    // (i + 0.5) / overlap rises from 0 to 1 across the overlap; the two ramps of neighbours sum to 1 there.
    if (start > 0) w[i] = std::min(w[i], static_cast<float>((i + 0.5) / overlap));
    if (start + size < length) w[i] = std::min(w[i], static_cast<float>((size - i - 0.5) / overlap));
  }
  return weights;
}

Segmenter::Segmenter(const setup::TrainedModel& model, SegmenterOptions options)
    : model_(model), net_(model.model), options_(std::move(options)),
      inputs_(setup::model_input_options(model.config, model.shapes)) {
  VT_CHECK(options_.mode == "resize" || options_.mode == "tile", "--mode must be resize or tile, got '",
           options_.mode, "'");
  if (options_.mode == "tile") window_starts(1, options_.tile_size, options_.tile_overlap);  // checks the sizes
  if (options_.generate) predictor_.emplace(model, PredictOptions{});
}

at::Tensor Segmenter::probability(const data::SampleRecord& record) {
  return options_.mode == "tile" ? tiled(record) : whole(record);
}

at::Tensor Segmenter::whole(const data::SampleRecord& record) {
  if (predictor_) {
    const Prediction prediction = predictor_->predict({record}).front();
    if (!prediction.probabilities.empty()) return prediction.probabilities.front();
    ++answers_without_seg_;
    return at::zeros({record.image.height, record.image.width}, at::kFloat);
  }
  torch::NoGradGuard no_grad;
  const data::Batch batch = data::collate({data::make_model_inputs(record, inputs_, 0)});
  const model::Sa2VABatch inputs = model_.encoder->encode(batch, model_.device, model_.dtype, false).inputs;
  const model::SegMasks masks = net_->predict(inputs.inputs, inputs.sam_images);
  return model::sam2::probabilities_from_logits(masks.logits, inputs_.sam_size, record.image.height,
                                                record.image.width)[0]
      .to(at::kCPU);
}

at::Tensor Segmenter::tiled(const data::SampleRecord& record) {
  const int height = record.image.height, width = record.image.width;
  const int size = options_.tile_size, overlap = options_.tile_overlap;
  at::Tensor sum = at::zeros({height, width}, at::kFloat), weight = at::zeros({height, width}, at::kFloat);
  for (const int top : window_starts(height, size, overlap)) {
    const int rows = std::min(size, height);
    const at::Tensor wy = window_weights(top, rows, height, overlap);
    for (const int left : window_starts(width, size, overlap)) {
      const int columns = std::min(size, width);
      data::SampleRecord window;  // only what the model inputs read: the crops and the referring texts
      window.texts = record.texts;
      window.source = record.source;
      window.image = data::crop(record.image, top, left, rows, columns);
      window.mask = data::crop(record.mask, top, left, rows, columns);
      window.fov = data::crop(record.fov, top, left, rows, columns);
      const at::Tensor w = at::outer(wy, window_weights(left, columns, width, overlap));
      sum.slice(0, top, top + rows).slice(1, left, left + columns) += w * whole(window);
      weight.slice(0, top, top + rows).slice(1, left, left + columns) += w;
    }
  }
  return sum / weight;
}

}  // namespace vesseltune::eval
