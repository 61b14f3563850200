#include "vesseltune/model/sam2/image_encoder.h"

#include <algorithm>

#include "vesseltune/core/check.h"
#include "vesseltune/model/precision.h"

namespace vesseltune::model::sam2 {

FpnLateralImpl::FpnLateralImpl(int64_t in_channels, int64_t d_model) {
  conv_ = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(in_channels, d_model, 1)));
}

at::Tensor FpnLateralImpl::forward(const at::Tensor& x) { return conv_->forward(x); }

FpnNeckImpl::FpnNeckImpl(const Sam2Config& config) : top_down_levels_(config.fpn_top_down_levels) {
  convs_ = register_module("convs", torch::nn::ModuleList());
  std::vector<int64_t> dims = config.trunk.stage_dims();
  for (auto it = dims.rbegin(); it != dims.rend(); ++it) convs_->push_back(FpnLateral(*it, config.d_model));
}

std::vector<at::Tensor> FpnNeckImpl::forward(const std::vector<at::Tensor>& stages) {
  const int64_t n = static_cast<int64_t>(convs_->size());
  VT_CHECK(static_cast<int64_t>(stages.size()) == n, "FPN neck: ", stages.size(), " trunk stages for ", n,
           " lateral convs");
  std::vector<at::Tensor> levels(n);
  at::Tensor previous;
  for (int64_t i = n - 1; i >= 0; --i) {
    at::Tensor lateral = convs_[n - 1 - i]->as<FpnLateral>()->forward(stages[i]);
    const bool top_down =
        previous.defined() && std::find(top_down_levels_.begin(), top_down_levels_.end(), i) != top_down_levels_.end();
    if (top_down) {
      // SAM2 upsamples in float32 and adds to the lateral features (sum fusion).
      at::Tensor up = at::upsample_nearest2d(at_least_fp32(previous), {2 * previous.size(2), 2 * previous.size(3)});
      previous = lateral + up.to(lateral.scalar_type());
    } else {
      previous = lateral;
    }
    levels[i] = previous;
  }
  return levels;
}

ImageEncoderImpl::ImageEncoderImpl(const Sam2Config& config) : scalp_(config.scalp) {
  trunk_ = register_module("trunk", Hiera(config.trunk));
  neck_ = register_module("neck", FpnNeck(config));
}

std::vector<at::Tensor> ImageEncoderImpl::forward(const at::Tensor& pixels) {
  std::vector<at::Tensor> levels = neck_->forward(trunk_->forward(pixels));
  levels.resize(levels.size() - static_cast<size_t>(scalp_));
  return levels;
}

}  // namespace vesseltune::model::sam2
