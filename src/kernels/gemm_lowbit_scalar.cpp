// Scalar GEMM tiles for nf4, nf4_dq, q2_g64 and q3_g64: the reference the
// SIMD kernels are tested against (lowbit_kernels.h gives the integer form),
// and the fallback without AVX2. One output at a time, one 64-weight block at
// a time: decode the codes, then one integer dot per 32-value activation block.
#include <cstring>
#include <type_traits>

#include "base/fp16.h"
#include "kernels/activations.h"
#include "kernels/lowbit_kernels.h"

namespace memwall::kernels {
namespace {

float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_fp32(h);
}

// nf4 and nf4_dq: 32 index bytes (byte j: weight j low nibble, j + 32 high).
// Returns 1 / K of the codes used.
float decode_nf4_codes(const uint8_t* qs, bool wide, LowbitBlock& o) {
  for (int j = 0; j < 32; ++j) {
    o.c[j] = wide ? kNf4Codes16[qs[j] & 0x0f] : kNf4Codes[qs[j] & 0x0f];
    o.c[j + 32] = wide ? kNf4Codes16[qs[j] >> 4] : kNf4Codes[qs[j] >> 4];
  }
  return wide ? 1.0f / float(kNf4Wide) : 1.0f / 127.0f;
}

// q2_g64 / q3_g64: bits 2k..2k+1 of ql[j] = weight 16k + j; q3's bit i of
// qh = bit 2 of weight i.
void decode_group(const uint8_t* b, bool three_bits, LowbitBlock& o) {
  for (int i = 0; i < 64; ++i) {
    int q = (b[4 + i % 16] >> (2 * (i / 16))) & 3;
    if (three_bits) q |= ((b[20 + i / 8] >> (i % 8)) & 1) << 2;
    o.c[i] = int16_t(q);
  }
  o.a = f16_at(b);
  o.b = f16_at(b + 2);
}

// Integer sums of one 32-value activation block against 32 codes.
struct ActQ8 {
  static constexpr size_t kBytes = sizeof(BlockQ8x);
  static constexpr bool kWide = false;
  static float block(const int16_t* c, float a, float b, const uint8_t* p) {
    BlockQ8x x;
    std::memcpy(&x, p, sizeof(x));
    int32_t dot = 0;
    for (int i = 0; i < 32; ++i) dot += int32_t(c[i]) * x.qs[i];
    return x.d * (a * float(dot) + b * float(x.sum));
  }
};

// 16-bit activations: 256 * dot(hi) + dot(lo), in int64 (16-bit NF4 codes
// reach 32 * 16383 * 32512).
struct ActQ16 {
  static constexpr size_t kBytes = sizeof(BlockQ16x);
  static constexpr bool kWide = true;
  static float block(const int16_t* c, float a, float b, const uint8_t* p) {
    BlockQ16x x;
    std::memcpy(&x, p, sizeof(x));
    int64_t hi = 0, lo = 0;
    for (int i = 0; i < 32; ++i) {
      hi += int64_t(c[i]) * x.hi[i];
      lo += int64_t(c[i]) * x.lo[i];
    }
    return x.d * (a * float(256 * hi + lo) + b * float(x.sum));
  }
};

template <TensorType kType, class A>
void tile(const uint8_t* w, size_t ws, int64_t R, const uint8_t* x, size_t xs, int64_t T, int64_t n,
          float* y, int64_t ldy) {
  const int64_t nb = n / 64;
  LowbitBlock blk;
  for (int64_t r = 0; r < R; ++r) {
    for (int64_t t = 0; t < T; ++t) {
      float acc = 0;
      for (int64_t k = 0; k < nb; ++k) {
        decode_lowbit(kType, w + size_t(r) * ws, k, blk, A::kWide);
        const uint8_t* xb = x + size_t(t) * xs + size_t(2 * k) * A::kBytes;
        acc += A::block(blk.c, blk.a, blk.b, xb);
        acc += A::block(blk.c + 32, blk.a, blk.b, xb + A::kBytes);
      }
      y[t * ldy + r] = acc;
    }
  }
}

}  // namespace

bool decode_lowbit(TensorType type, const uint8_t* row, int64_t k, LowbitBlock& out, bool wide) {
  switch (type) {
    case TensorType::NF4: {
      const uint8_t* b = row + 34 * k;
      out.a = f16_at(b) * decode_nf4_codes(b + 2, wide, out);
      out.b = 0;
      return true;
    }
    case TensorType::NF4_DQ: {
      // Super-block {f16 D, u8 s[4], 4 x 32 index bytes}; block k % 4 of it.
      const uint8_t* sb = row + 134 * (k / 4);
      const int i = int(k % 4);
      out.a =
          f16_at(sb) * (float(sb[2 + i]) / 255.0f) * decode_nf4_codes(sb + 6 + 32 * i, wide, out);
      out.b = 0;
      return true;
    }
    case TensorType::Q2_G64:
      decode_group(row + 20 * k, false, out);
      return true;
    case TensorType::Q3_G64:
      decode_group(row + 28 * k, true, out);
      return true;
    default:
      return false;
  }
}

namespace {
template <TensorType kType, ActivationKind kAct>
constexpr GemmKernel scalar_kernel() {
  using A = std::conditional_t<kAct == ActivationKind::kQ8, ActQ8, ActQ16>;
  return {kType, Isa::kScalar, kAct, tile<kType, A>};
}
}  // namespace

const GemmKernel kGemmLowbitScalar[kLowbitKernels] = {
    scalar_kernel<TensorType::NF4, ActivationKind::kQ8>(),
    scalar_kernel<TensorType::NF4, ActivationKind::kQ16>(),
    scalar_kernel<TensorType::NF4_DQ, ActivationKind::kQ8>(),
    scalar_kernel<TensorType::NF4_DQ, ActivationKind::kQ16>(),
    scalar_kernel<TensorType::Q2_G64, ActivationKind::kQ8>(),
    scalar_kernel<TensorType::Q2_G64, ActivationKind::kQ16>(),
    scalar_kernel<TensorType::Q3_G64, ActivationKind::kQ8>(),
    scalar_kernel<TensorType::Q3_G64, ActivationKind::kQ16>(),
};

}  // namespace memwall::kernels
