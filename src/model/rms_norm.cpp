#include "vesseltune/model/rms_norm.h"
#include "vesseltune/core/torch_compat.h"

#include <torch/torch.h>

namespace vesseltune::model {

RMSNormImpl::RMSNormImpl(int64_t size, double eps) : eps_(eps) {
  weight = register_parameter("weight", torch::ones({size}));
}

at::Tensor RMSNormImpl::forward(const at::Tensor& x) { return compat::rms_norm(x, weight, eps_); }

}  // namespace vesseltune::model
