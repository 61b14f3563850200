// AdamW lanes for AVX2 (8 floats); this file is compiled with -mavx2.
#include <immintrin.h>

#include "adamw_lanes.h"

namespace vesseltune::optim::detail {
namespace {

struct Avx2Lanes {
  static constexpr int width = 8;
  using F = __m256;
  static F set1(float x) { return _mm256_set1_ps(x); }
  static F load(const float* p) { return _mm256_loadu_ps(p); }
  static F load(const Bf16* p) {
    // bf16 is the upper half of an fp32: widen to 32 bits and shift into place.
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
  }
  static void store(float* p, F x) { _mm256_storeu_ps(p, x); }
  static void store(Bf16* p, F x) {
    // Round to nearest even as c10::BFloat16 does; NaN becomes the canonical quiet NaN 0x7FC0.
    const __m256i bits = _mm256_castps_si256(x);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(bits, 16), _mm256_set1_epi32(1));
    const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(bits, _mm256_set1_epi32(0x7FFF)), lsb), 16);
    const __m256i is_nan = _mm256_castps_si256(_mm256_cmp_ps(x, x, _CMP_UNORD_Q));
    const __m256i result = _mm256_blendv_epi8(rounded, _mm256_set1_epi32(0x7FC0), is_nan);
    // Pack 8 x 32-bit to 8 x 16-bit: packus works per 128-bit lane, so fix the order with a permute.
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(result, result), 0xD8);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_castsi256_si128(packed));
  }
  static void store(NoOutput*, F) {}
  static F add(F a, F b) { return _mm256_add_ps(a, b); }
  static F mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F div(F a, F b) { return _mm256_div_ps(a, b); }
  static F sqrt(F a) { return _mm256_sqrt_ps(a); }
};

}  // namespace

// Entry point with external linkage, declared in adamw_kernel.cpp.
void adamw_avx2(const AdamWCoefficients& c, float* p, float* m, float* v, const void* g, Element grad_type,
                void* out, Element out_type, int64_t n) {
  adamw_dispatch<Avx2Lanes>(c, p, m, v, g, grad_type, out, out_type, n);
}

}  // namespace vesseltune::optim::detail
