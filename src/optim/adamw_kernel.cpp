#include "vesseltune/optim/adamw_kernel.h"

#include <cmath>

#include "adamw_lanes.h"
#include "vesseltune/core/check.h"
#include "vesseltune/optim/host_thread_pool.h"

namespace vesseltune::optim {
namespace detail {
void adamw_avx2(const AdamWCoefficients&, float*, float*, float*, const void*, Element, void*, Element, int64_t);
void adamw_avx512(const AdamWCoefficients&, float*, float*, float*, const void*, Element, void*, Element, int64_t);
}  // namespace detail

SimdLevel best_simd_level() {
  static const SimdLevel level = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) return SimdLevel::avx512;
    if (__builtin_cpu_supports("avx2")) return SimdLevel::avx2;
    return SimdLevel::scalar;
  }();
  return level;
}

const char* to_string(SimdLevel level) {
  switch (level) {
    case SimdLevel::scalar: return "scalar";
    case SimdLevel::avx2: return "avx2";
    case SimdLevel::avx512: return "avx512";
  }
  return "?";
}

namespace {

detail::AdamWCoefficients coefficients(const AdamWStep& h) {
  VT_CHECK(h.step >= 1, "AdamW step must count from 1, got ", h.step);
  const double bias_correction1 = 1.0 - std::pow(h.beta1, static_cast<double>(h.step));
  const double bias_correction2 = 1.0 - std::pow(h.beta2, static_cast<double>(h.step));
  return detail::AdamWCoefficients{static_cast<float>(h.grad_scale),
                                   static_cast<float>(1.0 - h.lr * h.weight_decay),
                                   static_cast<float>(h.beta1),
                                   static_cast<float>(1.0 - h.beta1),
                                   static_cast<float>(h.beta2),
                                   static_cast<float>(1.0 - h.beta2),
                                   static_cast<float>(std::sqrt(bias_correction2)),
                                   static_cast<float>(-h.lr / bias_correction1),
                                   static_cast<float>(h.eps)};
}

void check_dtype(c10::ScalarType dtype, const char* what) {
  VT_CHECK(dtype == c10::kBFloat16 || dtype == c10::kFloat, "host AdamW: ", what, " must be bf16 or fp32, got ",
           c10::toString(dtype));
}

}  // namespace

void adamw_host(const AdamWStep& hyper, float* master, float* exp_avg, float* exp_avg_sq, const void* grad,
                c10::ScalarType grad_dtype, void* param_out, c10::ScalarType param_dtype, int64_t n,
                HostThreadPool* pool, SimdLevel level) {
  check_dtype(grad_dtype, "gradient");
  if (param_out) check_dtype(param_dtype, "parameter");
  VT_CHECK(level <= best_simd_level(), "host AdamW: this CPU has no ", to_string(level));
  const auto c = coefficients(hyper);
  const auto grad_type = grad_dtype == c10::kBFloat16 ? detail::Element::bf16 : detail::Element::fp32;
  const auto out_type = param_dtype == c10::kBFloat16 ? detail::Element::bf16 : detail::Element::fp32;
  const size_t grad_size = c10::elementSize(grad_dtype);
  const size_t out_size = param_out ? c10::elementSize(param_dtype) : 0;
  auto run = [&](int, int64_t begin, int64_t end) {
    const void* g = static_cast<const char*>(grad) + begin * grad_size;
    void* out = param_out ? static_cast<char*>(param_out) + begin * out_size : nullptr;
    float* p = master + begin;
    float* m = exp_avg + begin;
    float* v = exp_avg_sq + begin;
    switch (level) {
      case SimdLevel::avx512: detail::adamw_avx512(c, p, m, v, g, grad_type, out, out_type, end - begin); break;
      case SimdLevel::avx2: detail::adamw_avx2(c, p, m, v, g, grad_type, out, out_type, end - begin); break;
      case SimdLevel::scalar:
        detail::adamw_dispatch<detail::ScalarLanes>(c, p, m, v, g, grad_type, out, out_type, end - begin);
        break;
    }
  };
  // Parts are multiples of 64 elements: whole cache lines for every array, full vectors until the very end.
  if (pool) {
    pool->parallel_for(n, 64, run);
  } else {
    run(0, 0, n);
  }
}

double sum_of_squares_host(const void* values, c10::ScalarType dtype, int64_t n, HostThreadPool* pool) {
  check_dtype(dtype, "values");
  const int parts = pool ? pool->threads() : 1;
  std::vector<double> partial(parts, 0.0);
  auto run = [&](int part, int64_t begin, int64_t end) {
    // Eight fp32 lanes over runs of 256 values (32 per lane: rounding stays near 1e-7 relative), runs added in
    // double. Independent lanes let the compiler vectorise without reassociating a single sum.
    constexpr int lanes = 8;
    constexpr int64_t run_length = 256;
    double total = 0.0;
    for (int64_t start = begin; start < end; start += run_length) {
      const int64_t stop = std::min(end, start + run_length);
      float lane[lanes] = {};
      int64_t i = start;
      if (dtype == c10::kBFloat16) {
        const auto* x = static_cast<const c10::BFloat16*>(values);
        for (; i + lanes <= stop; i += lanes) {
          for (int k = 0; k < lanes; ++k) {
            const float value = static_cast<float>(x[i + k]);
            lane[k] += value * value;
          }
        }
        for (; i < stop; ++i) lane[0] += static_cast<float>(x[i]) * static_cast<float>(x[i]);
      } else {
        const auto* x = static_cast<const float*>(values);
        for (; i + lanes <= stop; i += lanes) {
          for (int k = 0; k < lanes; ++k) lane[k] += x[i + k] * x[i + k];
        }
        for (; i < stop; ++i) lane[0] += x[i] * x[i];
      }
      for (float value : lane) total += value;
    }
    partial[part] = total;
  };
  if (pool) {
    pool->parallel_for(n, 1024, run);
  } else {
    run(0, 0, n);
  }
  double total = 0.0;
  for (double value : partial) total += value;
  return total;
}

}  // namespace vesseltune::optim
