// AdamW lanes for AVX-512 (16 floats); this file is compiled with -mavx512f -mavx512bw.
#include <immintrin.h>

#include "adamw_lanes.h"

namespace vesseltune::optim::detail {
namespace {

struct Avx512Lanes {
  static constexpr int width = 16;
  using F = __m512;
  static F set1(float x) { return _mm512_set1_ps(x); }
  static F load(const float* p) { return _mm512_loadu_ps(p); }
  static F load(const Bf16* p) {
    const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
  }
  static void store(float* p, F x) { _mm512_storeu_ps(p, x); }
  static void store(Bf16* p, F x) {
    const __m512i bits = _mm512_castps_si512(x);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
    __m512i rounded = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(bits, _mm512_set1_epi32(0x7FFF)), lsb), 16);
    const __mmask16 is_nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    rounded = _mm512_mask_mov_epi32(rounded, is_nan, _mm512_set1_epi32(0x7FC0));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(rounded));
  }
  static void store(NoOutput*, F) {}
  static F add(F a, F b) { return _mm512_add_ps(a, b); }
  static F mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F div(F a, F b) { return _mm512_div_ps(a, b); }
  static F sqrt(F a) { return _mm512_sqrt_ps(a); }
};

}  // namespace

// Entry point with external linkage, declared in adamw_kernel.cpp.
void adamw_avx512(const AdamWCoefficients& c, float* p, float* m, float* v, const void* g, Element grad_type,
                  void* out, Element out_type, int64_t n) {
  adamw_dispatch<Avx512Lanes>(c, p, m, v, g, grad_type, out, out_type, n);
}

}  // namespace vesseltune::optim::detail
