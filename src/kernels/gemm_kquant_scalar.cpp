// Scalar GEMM tiles for the k-quant and ternary formats: the reference the
// SIMD kernels are tested against (kquant_kernels.h gives the integer form),
// and the fallback without AVX2. One output at a time, one super-block at a
// time: decode the weights, then integer dots per 16-value group.
#include <cstring>
#include <type_traits>

#include "base/fp16.h"
#include "kernels/activations_k.h"
#include "kernels/kquant_kernels.h"
#include "kernels/kquant_search.h"

namespace memwall::kernels {
namespace {

float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return fp16_to_fp32(h);
}

// q4_K / q5_K: {f16 d, f16 dmin, 12 bytes scales, [q5_K: 32 bytes qh], 128 bytes qs}.
void decode_k4(const uint8_t* b, bool five_bits, KSuperBlock& o) {
  uint8_t sc[8], m[8];
  kquant::unpack_scale_min_k4(b + 4, sc, m);
  const uint8_t* qh = b + 16;
  const uint8_t* qs = five_bits ? b + 48 : b + 16;
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      int lo = qs[32 * c + l] & 0xF, hi = qs[32 * c + l] >> 4;
      if (five_bits) {
        lo |= ((qh[l] >> (2 * c)) & 1) << 4;
        hi |= ((qh[l] >> (2 * c + 1)) & 1) << 4;
      }
      o.u[64 * c + l] = uint8_t(lo);
      o.u[64 * c + 32 + l] = uint8_t(hi);
    }
  }
  for (int g = 0; g < 16; ++g) {
    o.sc[g] = sc[g / 2];
    o.corr[g] = m[g / 2];
  }
  o.d = f16_at(b);
  o.dmin = -f16_at(b + 2);
}

// q6_K: {ql[128], qh[64], int8 scales[16], f16 d}.
void decode_q6_k(const uint8_t* b, KSuperBlock& o) {
  for (int h = 0; h < 2; ++h) {
    const uint8_t* ql = b + 64 * h;
    const uint8_t* qh = b + 128 + 32 * h;
    uint8_t* u = o.u + 128 * h;
    for (int l = 0; l < 32; ++l) {
      u[l] = uint8_t((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4));
      u[l + 32] = uint8_t((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4));
      u[l + 64] = uint8_t((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4));
      u[l + 96] = uint8_t((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4));
    }
  }
  for (int g = 0; g < 16; ++g) o.sc[g] = o.corr[g] = static_cast<int8_t>(b[192 + g]);
  o.d = f16_at(b + 208);
  o.dmin = -32.0f * o.d;
}

void unit_scales(KSuperBlock& o, float d) {
  for (int g = 0; g < 16; ++g) o.sc[g] = o.corr[g] = 1;
  o.d = d;
  o.dmin = -d;
}

// TQ2_0: {qs[64], f16 d}: bits 2k of byte 32c + m = weight 128c + 32k + m.
void decode_tq2_0(const uint8_t* b, KSuperBlock& o) {
  for (int c = 0; c < 2; ++c) {
    for (int k = 0; k < 4; ++k) {
      for (int m = 0; m < 32; ++m) o.u[128 * c + 32 * k + m] = (b[32 * c + m] >> (2 * k)) & 3;
    }
  }
  unit_scales(o, f16_at(b + 64));
}

// TQ1_0: {qs[48], qh[4], f16 d}; trit k of a byte = top of 3 * (byte * 3^k mod 256).
void decode_tq1_0(const uint8_t* b, KSuperBlock& o) {
  static constexpr uint8_t kPow3[5] = {1, 3, 9, 27, 81};
  const auto trit = [](uint8_t byte, int k) {
    return uint8_t((int(uint8_t(byte * kPow3[k])) * 3) >> 8);
  };
  for (int k = 0; k < 5; ++k) {
    for (int m = 0; m < 32; ++m) o.u[32 * k + m] = trit(b[m], k);
    for (int m = 0; m < 16; ++m) o.u[160 + 16 * k + m] = trit(b[32 + m], k);
  }
  for (int k = 0; k < 4; ++k) {
    for (int j = 0; j < 4; ++j) o.u[240 + 4 * k + j] = trit(b[48 + j], k);
  }
  unit_scales(o, f16_at(b + 52));
}

// One pass of 8-bit activations (qs, bsums) against a decoded super-block:
// d * sum sc * dot + dmin * sum corr * bsum, each sum exact in int64.
void pass_sums(const KSuperBlock& w, const int8_t* qs, const int16_t* bsums, int64_t& main,
               int64_t& corr) {
  main = corr = 0;
  for (int g = 0; g < 16; ++g) {
    int32_t dot = 0;
    for (int i = 16 * g; i < 16 * g + 16; ++i) dot += int32_t(w.u[i]) * qs[i];
    main += int64_t(w.sc[g]) * dot;
    corr += int64_t(w.corr[g]) * bsums[g];
  }
}

struct ActQ8K {
  static constexpr size_t kBytes = sizeof(BlockQ8K);
  static float block(const KSuperBlock& w, const uint8_t* p) {
    BlockQ8K x;
    std::memcpy(&x, p, sizeof(x));
    int64_t main, corr;
    pass_sums(w, x.qs, x.bsums, main, corr);
    return x.d * (w.d * float(main) + w.dmin * float(corr));
  }
};

struct ActQ16K {
  static constexpr size_t kBytes = sizeof(BlockQ16K);
  static float block(const KSuperBlock& w, const uint8_t* p) {
    BlockQ16K x;
    std::memcpy(&x, p, sizeof(x));
    int64_t main_hi, corr_hi, main_lo, corr_lo;
    pass_sums(w, x.hi, x.bsums_hi, main_hi, corr_hi);
    pass_sums(w, x.lo, x.bsums_lo, main_lo, corr_lo);
    return x.d * (w.d * float(256 * main_hi + main_lo) + w.dmin * float(256 * corr_hi + corr_lo));
  }
};

template <TensorType kType, class A>
void tile(const uint8_t* w, size_t ws, int64_t R, const uint8_t* x, size_t xs, int64_t T, int64_t n,
          float* y, int64_t ldy) {
  const int64_t nb = n / kQK;
  const size_t wb = tensor_type_info(kType).block_bytes;
  KSuperBlock dw;
  for (int64_t r = 0; r < R; ++r) {
    for (int64_t t = 0; t < T; ++t) {
      float acc = 0;
      for (int64_t b = 0; b < nb; ++b) {
        decode_ksuper(kType, w + size_t(r) * ws + size_t(b) * wb, dw);
        acc += A::block(dw, x + size_t(t) * xs + size_t(b) * A::kBytes);
      }
      y[t * ldy + r] = acc;
    }
  }
}

}  // namespace

bool decode_ksuper(TensorType type, const uint8_t* block, KSuperBlock& out) {
  switch (type) {
    case TensorType::Q4_K:
      decode_k4(block, false, out);
      return true;
    case TensorType::Q5_K:
      decode_k4(block, true, out);
      return true;
    case TensorType::Q6_K:
      decode_q6_k(block, out);
      return true;
    case TensorType::TQ1_0:
      decode_tq1_0(block, out);
      return true;
    case TensorType::TQ2_0:
      decode_tq2_0(block, out);
      return true;
    default:
      return false;
  }
}

namespace {
template <TensorType kType, ActivationKind kAct>
constexpr GemmKernel scalar_kernel() {
  using A = std::conditional_t<kAct == ActivationKind::kQ8K, ActQ8K, ActQ16K>;
  return {kType, Isa::kScalar, kAct, tile<kType, A>};
}
}  // namespace

const GemmKernel kGemmKQuantScalar[kKQuantKernels] = {
    scalar_kernel<TensorType::Q4_K, ActivationKind::kQ8K>(),
    scalar_kernel<TensorType::Q4_K, ActivationKind::kQ16K>(),
    scalar_kernel<TensorType::Q5_K, ActivationKind::kQ8K>(),
    scalar_kernel<TensorType::Q5_K, ActivationKind::kQ16K>(),
    scalar_kernel<TensorType::Q6_K, ActivationKind::kQ8K>(),
    scalar_kernel<TensorType::Q6_K, ActivationKind::kQ16K>(),
    scalar_kernel<TensorType::TQ1_0, ActivationKind::kQ8K>(),
    scalar_kernel<TensorType::TQ1_0, ActivationKind::kQ16K>(),
    scalar_kernel<TensorType::TQ2_0, ActivationKind::kQ8K>(),
    scalar_kernel<TensorType::TQ2_0, ActivationKind::kQ16K>(),
};

}  // namespace memwall::kernels
