// q8_0 weights x q8 activations, AVX-512 without VNNI (scheme:
// simd_avx512_q8.h).
//
// vpmaddubsw wants one unsigned operand and saturates int16, so the x + 128
// trick of the VNNI kernel would overflow (255 * 127 * 2). Instead the sign
// moves to the activations: |w| * (x negated where w < 0). Pairs stay within
// 2 * 128 * 127 = 32512; activations are in [-127, 127] (the quantizer's
// range), so negating them cannot overflow.
#include "kernels/simd_avx512_q8.h"
#include "kernels/simd_kernels.h"

namespace memwall::kernels {
namespace {

struct Q8_0 {
  static constexpr int kBytes = 34;
  static constexpr bool kFix = false;
  static constexpr float kFixScale = 0.0f;
  struct WQuad {
    __m512i abs_lo, abs_hi;
    __mmask64 neg_lo, neg_hi;
  };
  static WQuad load_w(const uint8_t* block, int count) {
    __m512i lo, hi;
    load_q8_0_quad(block, count, lo, hi);
    return {_mm512_abs_epi8(lo), _mm512_abs_epi8(hi), _mm512_movepi8_mask(lo),
            _mm512_movepi8_mask(hi)};
  }
  static XQuad load_x(const uint8_t* block, int count) { return load_x_quad(block, count); }
  static __m512i dot(const WQuad& w, const XQuad& x) {
    const __m512i zero = _mm512_setzero_si512();
    const __m512i xl = _mm512_mask_sub_epi8(x.lo, w.neg_lo, zero, x.lo);
    const __m512i xh = _mm512_mask_sub_epi8(x.hi, w.neg_hi, zero, x.hi);
    const __m512i ones = _mm512_set1_epi16(1);
    return _mm512_add_epi32(_mm512_madd_epi16(_mm512_maddubs_epi16(w.abs_lo, xl), ones),
                            _mm512_madd_epi16(_mm512_maddubs_epi16(w.abs_hi, xh), ones));
  }
  static void scales(const uint8_t* block, int count, __m512& d, __m512& fix) {
    fix = d = load_w_d<kBytes>(block, count);
  }
};

}  // namespace

const GemmKernel kGemmQ8_0Avx512{TensorType::Q8_0, Isa::kAvx512, ActivationKind::kQ8, tile<Q8_0>};

}  // namespace memwall::kernels
