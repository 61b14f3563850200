#include "vesseltune/model/sam2/layer_norm_2d.h"

namespace vesseltune::model::sam2 {

LayerNorm2dImpl::LayerNorm2dImpl(int64_t channels, double eps) : eps_(eps) {
  weight_ = register_parameter("weight", at::ones({channels}));
  bias_ = register_parameter("bias", at::zeros({channels}));
}

at::Tensor LayerNorm2dImpl::forward(const at::Tensor& x) {
  // Normalising the last dimension of the channels-last view is the same arithmetic as SAM2's mean/var over dim 1.
  return at::layer_norm(x.permute({0, 2, 3, 1}), {x.size(1)}, weight_, bias_, eps_).permute({0, 3, 1, 2});
}

}  // namespace vesseltune::model::sam2
