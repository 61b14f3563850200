#pragma once
// Reduced-precision tensors (bf16, fp16) are normalised, scored and turned into losses in fp32, as the Python
// reference does; fp32 stays fp32 and fp64 stays fp64, so that gradient checks in double see no fp32 rounding.

#include <ATen/ATen.h>

namespace vesseltune::model {

inline at::ScalarType at_least_fp32(at::ScalarType dtype) { return dtype == at::kDouble ? at::kDouble : at::kFloat; }
inline at::Tensor at_least_fp32(const at::Tensor& x) { return x.to(at_least_fp32(x.scalar_type())); }

}  // namespace vesseltune::model
