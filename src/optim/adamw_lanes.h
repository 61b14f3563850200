#pragma once
// The AdamW element update written once over a "lanes" type V (scalar, AVX2 or AVX-512), instantiated in one
// translation unit per instruction set (compiled with that ISA's flags). Internal to src/optim.
//
// Everything here has internal linkage and no LibTorch header is included: an inline function compiled with
// -mavx512f in one translation unit must never be picked by the linker for code that runs on a CPU without it.

#include <cmath>
#include <cstdint>
#include <cstring>

namespace vesseltune::optim::detail {

// Plain data shared by the translation units (no code, so no ISA concern).
// Per-step scalars in fp32, derived as torch::optim::AdamW derives them (double math, then to float).
struct AdamWCoefficients {
  float grad_scale, decay, beta1, one_minus_beta1, beta2, one_minus_beta2, sqrt_bias_correction2, neg_step_size, eps;
};

// bf16 storage: the upper 16 bits of an fp32.
struct Bf16 {
  uint16_t bits;
};

// Marks "no parameter output": stores are dropped.
struct NoOutput {};

enum class Element { bf16, fp32 };

namespace {

// One element at a time; also the tail of the vector loops.
struct ScalarLanes {
  static constexpr int width = 1;
  using F = float;
  static F set1(float x) { return x; }
  static F load(const float* p) { return *p; }
  static F load(const Bf16* p) {
    const uint32_t bits = static_cast<uint32_t>(p->bits) << 16;
    float x;
    std::memcpy(&x, &bits, sizeof(x));
    return x;
  }
  static void store(float* p, F x) { *p = x; }
  static void store(Bf16* p, F x) {
    // Round to nearest even, NaN to the quiet NaN 0x7FC0: as c10::BFloat16 does.
    if (std::isnan(x)) {
      p->bits = 0x7FC0;
      return;
    }
    uint32_t bits;
    std::memcpy(&bits, &x, sizeof(bits));
    p->bits = static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
  }
  static void store(NoOutput*, F) {}
  static F add(F a, F b) { return a + b; }
  static F mul(F a, F b) { return a * b; }
  static F div(F a, F b) { return a / b; }
  static F sqrt(F a) { return std::sqrt(a); }
};

template <class V, class G, class O>
inline void adamw_lanes(const AdamWCoefficients& c, float* p, float* m, float* v, const G* g, O* out, int64_t n,
                        int64_t& i) {
  const auto scale = V::set1(c.grad_scale), decay = V::set1(c.decay);
  const auto b1 = V::set1(c.beta1), omb1 = V::set1(c.one_minus_beta1);
  const auto b2 = V::set1(c.beta2), omb2 = V::set1(c.one_minus_beta2);
  const auto sqrt_bc2 = V::set1(c.sqrt_bias_correction2), neg_step = V::set1(c.neg_step_size), eps = V::set1(c.eps);
  for (; i + V::width <= n; i += V::width) {
    const auto grad = V::mul(V::load(g + i), scale);
    const auto param = V::mul(V::load(p + i), decay);
    const auto m1 = V::add(V::mul(V::load(m + i), b1), V::mul(omb1, grad));
    const auto v1 = V::add(V::mul(V::load(v + i), b2), V::mul(V::mul(omb2, grad), grad));
    const auto denom = V::add(V::div(V::sqrt(v1), sqrt_bc2), eps);
    const auto updated = V::add(param, V::div(V::mul(neg_step, m1), denom));
    V::store(m + i, m1);
    V::store(v + i, v1);
    V::store(p + i, updated);
    if (out) V::store(out + i, updated);
  }
}

// Vector body then scalar tail, for one (gradient type, output type) pair.
template <class V, class G, class O>
void adamw_span(const AdamWCoefficients& c, float* p, float* m, float* v, const G* g, O* out, int64_t n) {
  int64_t i = 0;
  adamw_lanes<V>(c, p, m, v, g, out, n, i);
  adamw_lanes<ScalarLanes>(c, p, m, v, g, out, n, i);
}

template <class V>
void adamw_dispatch(const AdamWCoefficients& c, float* p, float* m, float* v, const void* g, Element grad_type,
                    void* out, Element out_type, int64_t n) {
  auto with_grad = [&](auto* grad) {
    if (out == nullptr) {
      adamw_span<V>(c, p, m, v, grad, static_cast<NoOutput*>(nullptr), n);
    } else if (out_type == Element::bf16) {
      adamw_span<V>(c, p, m, v, grad, static_cast<Bf16*>(out), n);
    } else {
      adamw_span<V>(c, p, m, v, grad, static_cast<float*>(out), n);
    }
  };
  if (grad_type == Element::bf16) {
    with_grad(static_cast<const Bf16*>(g));
  } else {
    with_grad(static_cast<const float*>(g));
  }
}

}  // namespace
}  // namespace vesseltune::optim::detail
