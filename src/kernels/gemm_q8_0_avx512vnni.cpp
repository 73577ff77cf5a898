// q8_0 weights x q8 activations, AVX-512 VNNI (scheme: simd_avx512_q8.h).
//
// Both operands are signed but vpdpbusd wants one unsigned, so activations go
// in as x + 128 (x ^ 0x80 read as unsigned, once per token and quad) and
// each weight row's 128 * sum(w) is subtracted: sum((x + 128) w) - 128 sum(w)
// = sum(x w), exact for every int8 value including -128. The correction is
// computed once per row and quad and seeds the accumulator, so every
// (row, token) pair costs just the two vpdpbusd.
#include "kernels/simd_avx512_q8.h"
#include "kernels/simd_kernels.h"

namespace memwall::kernels {
namespace {

struct Q8_0 {
  static constexpr int kBytes = 34;
  static constexpr bool kFix = false;
  static constexpr float kFixScale = 0.0f;
  struct WQuad {
    __m512i lo, hi, minus_128_sum;
  };
  static WQuad load_w(const uint8_t* block, int count) {
    WQuad q;
    load_q8_0_quad(block, count, q.lo, q.hi);
    const __m512i c128 = _mm512_set1_epi8(char(0x80));
    const __m512i s =
        _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), c128, q.lo), c128, q.hi);
    q.minus_128_sum = _mm512_sub_epi32(_mm512_setzero_si512(), s);
    return q;
  }
  static XQuad load_x(const uint8_t* block, int count) {
    XQuad x = load_x_quad(block, count);
    const __m512i flip = _mm512_set1_epi8(char(0x80));
    return {_mm512_xor_si512(x.lo, flip), _mm512_xor_si512(x.hi, flip)};
  }
  static __m512i dot(const WQuad& w, const XQuad& x) {
    return _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(w.minus_128_sum, x.lo, w.lo), x.hi, w.hi);
  }
  static void scales(const uint8_t* block, int count, __m512& d, __m512& fix) {
    fix = d = load_w_d<kBytes>(block, count);
  }
};

}  // namespace

const GemmKernel kGemmQ8_0Avx512Vnni{TensorType::Q8_0, Isa::kAvx512Vnni, ActivationKind::kQ8,
                                     tile<Q8_0>};

}  // namespace memwall::kernels
