// The SIMD host AdamW against a scalar double-precision reference, over sizes that exercise every vector
// width and tail, each instruction set this CPU has, bf16 and fp32 gradients and outputs.
#include <gtest/gtest.h>

#include <ATen/ATen.h>
#include <c10/util/BFloat16.h>

#include <cmath>
#include <cstring>
#include <random>

#include "vesseltune/optim/adamw_kernel.h"
#include "vesseltune/optim/host_thread_pool.h"

using namespace vesseltune::optim;

namespace {

struct Reference {
  std::vector<double> p, m, v;
};

void reference_step(const AdamWStep& h, Reference& r, const std::vector<double>& grad) {
  const double bc1 = 1 - std::pow(h.beta1, h.step), bc2 = 1 - std::pow(h.beta2, h.step);
  for (size_t i = 0; i < r.p.size(); ++i) {
    const double g = grad[i] * h.grad_scale;
    r.p[i] *= 1 - h.lr * h.weight_decay;
    r.m[i] = h.beta1 * r.m[i] + (1 - h.beta1) * g;
    r.v[i] = h.beta2 * r.v[i] + (1 - h.beta2) * g * g;
    r.p[i] -= h.lr / bc1 * r.m[i] / (std::sqrt(r.v[i]) / std::sqrt(bc2) + h.eps);
  }
}

std::vector<SimdLevel> levels() {
  std::vector<SimdLevel> all{SimdLevel::scalar};
  if (best_simd_level() >= SimdLevel::avx2) all.push_back(SimdLevel::avx2);
  if (best_simd_level() >= SimdLevel::avx512) all.push_back(SimdLevel::avx512);
  return all;
}

TEST(AdamWKernel, MatchesDoublePrecisionReferenceOverAllTails) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const std::vector<int64_t> sizes{1, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 1000, 1031};
  for (SimdLevel level : levels()) {
    for (c10::ScalarType grad_dtype : {c10::kFloat, c10::kBFloat16}) {
      for (int64_t n : sizes) {
        std::vector<float> p(n), m(n, 0.0f), v(n, 0.0f);
        Reference ref{std::vector<double>(n), std::vector<double>(n, 0.0), std::vector<double>(n, 0.0)};
        for (int64_t i = 0; i < n; ++i) ref.p[i] = p[i] = normal(rng);
        std::vector<float> out(n);
        AdamWStep h;
        h.lr = 1e-2;
        h.weight_decay = 0.1;
        h.grad_scale = 0.5;
        for (int step = 1; step <= 3; ++step) {
          h.step = step;
          at::Tensor grad = at::randn({n}).to(grad_dtype);
          const at::Tensor grad_double = grad.to(at::kDouble);
          reference_step(h, ref, std::vector<double>(grad_double.data_ptr<double>(), grad_double.data_ptr<double>() + n));
          adamw_host(h, p.data(), m.data(), v.data(), grad.data_ptr(), grad_dtype, out.data(), c10::kFloat, n, nullptr,
                     level);
        }
        for (int64_t i = 0; i < n; ++i) {
          ASSERT_NEAR(p[i], ref.p[i], 2e-6 * std::abs(ref.p[i]) + 1e-7)
              << to_string(level) << " n=" << n << " i=" << i << " grad " << c10::toString(grad_dtype);
          ASSERT_NEAR(m[i], ref.m[i], 2e-6 * std::abs(ref.m[i]) + 1e-7);
          ASSERT_NEAR(v[i], ref.v[i], 2e-6 * std::abs(ref.v[i]) + 1e-9);
          ASSERT_EQ(out[i], p[i]);
        }
      }
    }
  }
}

TEST(AdamWKernel, Bf16OutputRoundsToNearestEven) {
  // With lr 0 the master weights stay as they are and the output is their bf16 rounding. bf16 keeps 8
  // significant bits: between 1 and 2 its spacing is 2^-7.
  const float ulp = std::ldexp(1.0f, -7);
  const std::vector<float> values{1.0f + ulp / 2,        // tie -> even (1.0)
                                  1.0f + 3 * ulp / 2,    // tie -> even (1 + 2 ulp)
                                  1.0f + ulp / 2 + 1e-6f,  // above the tie -> up
                                  -1.0f - ulp / 2,       // tie -> even (-1.0)
                                  std::nanf(""), 3.0e38f};
  const std::vector<uint16_t> expected{0x3F80, 0x3F82, 0x3F81, 0xBF80, 0x7FC0, 0x7F62};
  for (SimdLevel level : levels()) {
    // Pad to 37 elements so that the values sit in vector lanes and in the scalar tail.
    for (int64_t offset : {int64_t{0}, int64_t{31}}) {
      const int64_t n = 37;
      std::vector<float> p(n, 1.0f), m(n, 0.0f), v(n, 0.0f), grad(n, 0.0f);
      for (size_t k = 0; k < values.size(); ++k) p[offset + k] = values[k];
      std::vector<c10::BFloat16> out(n);
      AdamWStep h;
      h.lr = 0.0;
      adamw_host(h, p.data(), m.data(), v.data(), grad.data(), c10::kFloat, out.data(), c10::kBFloat16, n, nullptr, level);
      for (size_t k = 0; k < values.size(); ++k) {
        EXPECT_EQ(out[offset + k].x, expected[k]) << to_string(level) << " value " << values[k];
      }
    }
  }
}

TEST(AdamWKernel, ThreadedResultEqualsSingleThreadBitForBit) {
  const int64_t n = 100003;
  at::Tensor grad = at::randn({n}).to(at::kBFloat16);
  at::Tensor p1 = at::randn({n}), m1 = at::zeros({n}), v1 = at::zeros({n});
  at::Tensor p2 = p1.clone(), m2 = m1.clone(), v2 = v1.clone();
  at::Tensor out1 = at::empty({n}, at::kBFloat16), out2 = at::empty({n}, at::kBFloat16);
  HostThreadPool pool(3, 0, 1);
  AdamWStep h;
  h.weight_decay = 0.01;
  adamw_host(h, p1.data_ptr<float>(), m1.data_ptr<float>(), v1.data_ptr<float>(), grad.data_ptr(), c10::kBFloat16,
             out1.data_ptr(), c10::kBFloat16, n, nullptr);
  adamw_host(h, p2.data_ptr<float>(), m2.data_ptr<float>(), v2.data_ptr<float>(), grad.data_ptr(), c10::kBFloat16,
             out2.data_ptr(), c10::kBFloat16, n, &pool);
  EXPECT_TRUE(at::equal(p1, p2));
  EXPECT_TRUE(at::equal(v1, v2));
  EXPECT_TRUE(at::equal(out1, out2));
}

TEST(AdamWKernel, SumOfSquaresMatchesDouble) {
  HostThreadPool pool(2, 0, 1);
  for (int64_t n : {int64_t{1}, int64_t{1000}, int64_t{123457}}) {
    for (c10::ScalarType dtype : {c10::kFloat, c10::kBFloat16}) {
      at::Tensor x = at::randn({n}).to(dtype);
      const double expected = x.to(at::kDouble).pow(2).sum().item<double>();
      EXPECT_NEAR(sum_of_squares_host(x.data_ptr(), dtype, n, &pool), expected, 1e-6 * expected) << n;
    }
  }
}

TEST(HostThreadPool, PartsCoverTheRangeOnceAtAlignedBoundaries) {
  HostThreadPool pool(3, 0, 1);
  std::vector<int> hits(1000, 0);
  pool.parallel_for(1000, 64, [&](int, int64_t begin, int64_t end) {
    EXPECT_EQ(begin % 64, 0);
    for (int64_t i = begin; i < end; ++i) ++hits[i];
  });
  for (int h : hits) ASSERT_EQ(h, 1);
}

}  // namespace
