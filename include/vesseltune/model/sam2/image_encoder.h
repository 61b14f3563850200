#pragma once
// SAM2's `image_encoder`: the Hiera trunk and the FPN neck. The neck projects every trunk stage to d_model
// with a 1×1 conv (`neck.convs.N.conv`, N = 0 for the lowest resolution) and, from the lowest resolution up,
// adds the nearest-×2-upsampled level below on the fpn_top_down_levels; `scalp` then drops the lowest-
// resolution levels. The neck's sine position encodings feed only SAM2's memory attention, so they are not
// computed here.

#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/pimpl.h>

#include <vector>

#include "vesseltune/model/sam2/hiera.h"
#include "vesseltune/model/sam2/sam2_config.h"

namespace vesseltune::model::sam2 {

// One lateral projection; exists so that the key reads `convs.N.conv` as in SAM2's nn.Sequential.
class FpnLateralImpl : public torch::nn::Module {
 public:
  FpnLateralImpl(int64_t in_channels, int64_t d_model);
  at::Tensor forward(const at::Tensor& x);

 private:
  torch::nn::Conv2d conv_{nullptr};
};
TORCH_MODULE(FpnLateral);

// Key: convs.N.conv.
class FpnNeckImpl : public torch::nn::Module {
 public:
  explicit FpnNeckImpl(const Sam2Config& config);
  // Trunk stages (highest resolution first) → FPN levels, same order and count.
  std::vector<at::Tensor> forward(const std::vector<at::Tensor>& stages);

 private:
  std::vector<int64_t> top_down_levels_;
  torch::nn::ModuleList convs_{nullptr};
};
TORCH_MODULE(FpnNeck);

// Keys: trunk, neck.
class ImageEncoderImpl : public torch::nn::Module {
 public:
  explicit ImageEncoderImpl(const Sam2Config& config);
  // [B, 3, S, S] normalised pixels → FPN levels after the scalp, highest resolution (stride 4) first.
  std::vector<at::Tensor> forward(const at::Tensor& pixels);

 private:
  int64_t scalp_;
  Hiera trunk_{nullptr};
  FpnNeck neck_{nullptr};
};
TORCH_MODULE(ImageEncoder);

}  // namespace vesseltune::model::sam2
