#include "vesseltune/model/rms_norm.h"
#include "vesseltune/model/precision.h"

#include <torch/torch.h>

namespace vesseltune::model {

RMSNormImpl::RMSNormImpl(int64_t size, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({size}));
}

at::Tensor RMSNormImpl::forward(const at::Tensor& x) {
  at::Tensor x32 = at_least_fp32(x);
  at::Tensor normed = x32 * at::rsqrt(x32.pow(2).mean(-1, /*keepdim=*/true) + eps_);
  return weight * normed.to(x.scalar_type());
}

}  // namespace vesseltune::model
