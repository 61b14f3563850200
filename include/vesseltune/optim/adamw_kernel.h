#pragma once
// AdamW on host memory: fp32 master weights and moments, gradients in bf16 or fp32, the updated parameter
// written in the model's dtype. Vectorised (AVX-512 where the CPU has it, AVX2 otherwise, scalar tail) and
// split over a HostThreadPool. The arithmetic follows torch::optim::AdamW step for step:
//   p *= 1 - lr*wd;  m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g;
//   p -= lr/bc1 * m / (sqrt(v)/sqrt(bc2) + eps),  with bc_i = 1 - b_i^step and g = grad * grad_scale.
// Memory traffic per parameter: read grad (2) + master/m/v (12), write master/m/v (12) + parameter (2) = 28 bytes.

#include <c10/core/ScalarType.h>

#include <cstdint>

namespace vesseltune::optim {

class HostThreadPool;

struct AdamWStep {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  int64_t step = 1;          // the step being taken, counted from 1 (bias correction)
  double grad_scale = 1.0;   // folds gradient averaging and clipping into the update
};

enum class SimdLevel { scalar, avx2, avx512 };
SimdLevel best_simd_level();  // what this CPU supports
const char* to_string(SimdLevel level);

// Updates n elements in place. `grad` and `param_out` have dtypes bf16 or fp32; param_out may be null.
void adamw_host(const AdamWStep& hyper, float* master, float* exp_avg, float* exp_avg_sq, const void* grad,
                c10::ScalarType grad_dtype, void* param_out, c10::ScalarType param_dtype, int64_t n,
                HostThreadPool* pool, SimdLevel level = best_simd_level());

// Sum of squares of n bf16 or fp32 values, accumulated in double.
double sum_of_squares_host(const void* values, c10::ScalarType dtype, int64_t n, HostThreadPool* pool);

}  // namespace vesseltune::optim
