// The unsigned x signed byte dot of the avx512vnni target: one vpdpbusd per
// 64 bytes. Include only from *_avx512vnni.cpp files (see simd_avx512_q8.h).
#pragma once

#include "kernels/simd_x86.h"

namespace memwall::kernels {
namespace {

struct DotVnni {
  static __m512i dot(__m512i a_lo, __m512i a_hi, __m512i b_lo, __m512i b_hi) {
    return _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), a_lo, b_lo), a_hi, b_hi);
  }
};

}  // namespace
}  // namespace memwall::kernels
