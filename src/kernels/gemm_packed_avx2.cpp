// GEMM tiles over packed weights (layout: packed_weights.h), AVX2.
//
// AVX2 has no vpdpbusd. q4_0 and q4_1 take vpmaddubsw on the unsigned
// nibbles against the activations' int8 bytes, read in place: qs of
// BlockQ8x, or each half of BlockQ16x (block_dots says why nothing
// saturates). q8_0 cannot: its weights fill the unsigned byte, and with the
// sign moved over a 16-bit activation's lo of -128 has no negation. So q8_0
// goes through vpmaddwd on int16 words, exact: masks and 16-bit shifts split
// each row's dword of half a packed chunk (one ymm: 8 rows x 4 bytes) into
// bytes 0 and 2, then 1 and 3, with no shuffles, and the activations are
// rearranged once per tile to match (XWords: each group of 4 values stored
// as x0 x2 x1 x3), so one broadcast dword meets one word vector.
//
// Micro-tiles: 16 rows x kTokens tokens for prefill (both halves share each
// activation broadcast); 16 rows x 1 token for decode, so each cache line of
// a group is read once, in address order, with the prefetch distances
// measured on the AVX-512 VNNI kernel.
//
// Per block and token the int32 sum becomes a float once, with the offsets of
// gemm_packed_avx512vnni.cpp (q4_0: -8 sum_x, q8_0: -128 sum_x as the starting
// value; q4_1: + m_w d_x sum_x).
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/activations.h"
#include "kernels/packed_weights.h"
#include "kernels/simd_kernels.h"
#include "kernels/simd_x86.h"

namespace memwall::kernels {
namespace {

constexpr int kTokens = 2;            // tokens per prefill micro-tile (x 16 rows)
constexpr int64_t kChunkTokens = 16;  // tokens rearranged at a time
// Rows per prefill work item: a tile call on words rearranges its activations
// once, so more rows per call amortize that (1B q4_0 prefill, then on words,
// +5 to 15% over 64 rows in alternating runs).
constexpr int64_t kPrefillRows = 256;
constexpr size_t kPrefetchAhead = 2048;
constexpr size_t kPrefetchFar = 16384;

// One token's activation block as words: w[4g .. 4g+3] = X[4g], X[4g+2],
// X[4g+1], X[4g+3] (X the integer values: qs, or 256 hi + lo).
struct XWords {
  float d;
  int32_t sum;
  int16_t w[32];
};
static_assert(sizeof(XWords) == 72);

inline __m256i load256(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}
inline void store256(void* p, __m256i v) {
  _mm256_storeu_si256(static_cast<__m256i*>(p), v);
}

inline __m256i pair_order(__m256i bytes) {
  const __m256i order = _mm256_setr_epi8(0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11, 12, 14, 13, 15,  //
                                         0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11, 12, 14, 13, 15);
  return _mm256_shuffle_epi8(bytes, order);
}

inline void to_words(const BlockQ8x* b, XWords* o) {
  const __m256i q = pair_order(load256(b->qs));
  store256(o->w, _mm256_cvtepi8_epi16(_mm256_castsi256_si128(q)));
  store256(o->w + 16, _mm256_cvtepi8_epi16(_mm256_extracti128_si256(q, 1)));
  o->d = b->d;
  o->sum = b->sum;
}

inline void to_words(const BlockQ16x* b, XWords* o) {
  const __m256i hi = pair_order(load256(b->hi));
  const __m256i lo = pair_order(load256(b->lo));
  // lo is the word's low byte read as unsigned: borrow 1 from hi when lo < 0.
  const __m256i high = _mm256_add_epi8(hi, _mm256_cmpgt_epi8(_mm256_setzero_si256(), lo));
  const __m256i a = _mm256_unpacklo_epi8(lo, high);  // values 0..7 | 16..23
  const __m256i c = _mm256_unpackhi_epi8(lo, high);  // values 8..15 | 24..31
  store256(o->w, _mm256_permute2x128_si256(a, c, 0x20));
  store256(o->w + 16, _mm256_permute2x128_si256(a, c, 0x31));
  o->d = b->d;
  o->sum = b->sum;
}

template <TensorType kType>
struct Packed {
  static constexpr bool kQ8 = kType == TensorType::Q8_0;
  static constexpr size_t kQuant = kQ8 ? 512 : 256;
  static constexpr size_t kScale = kType == TensorType::Q4_1 ? 64 : 32;
  static constexpr int32_t kOffset = kQ8 ? 128 : kType == TensorType::Q4_0 ? 8 : 0;
  static constexpr int kChunks = int(kQuant / 64);
};

// Half a packed q8_0 chunk (8 rows x 4 bytes, stored w + 128) as two word
// vectors: bytes 0 and 2 of each row, then bytes 1 and 3, whose activation
// dwords start at XWords::w[4p] and w[4p + 2].
inline void q8_words(const uint8_t* half, __m256i (&v)[2]) {
  const __m256i z = load256(half);
  v[0] = _mm256_and_si256(z, _mm256_set1_epi16(0x00ff));
  v[1] = _mm256_srli_epi16(z, 8);
}

inline void store_rows(float* y, __m256 v, int64_t live) {
  if (live >= 8) {
    _mm256_storeu_ps(y, v);
  } else if (live > 0) {
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    _mm256_maskstore_ps(y, _mm256_cmpgt_epi32(_mm256_set1_epi32(int32_t(live)), lane), v);
  }
}

inline float load_f32(const void* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}
inline int32_t load_i32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// The int32 dots of one block of rows [8 h0, 8 (h0 + kH)) with kT tokens'
// activation blocks xb[t] (of type A), seeded with the format's offset term.
//
// q4_0, q4_1 read BlockQ8x or BlockQ16x in place: vpmaddubsw on the unsigned
// nibbles and each signed int8 part (qs; or hi and lo), summed per part in
// int16 over the block (at most 8 x 2 x 15 x 128 = 30720, so nothing
// saturates), then through vpmaddwd (hi weighted 256). q8_0 reads XWords:
// vpmaddwd per word pair.
template <TensorType kType, class A, int kH, int kT>
inline void block_dots(const uint8_t* q, const uint8_t* const (&xb)[kT], int h0,
                       __m256i (&isum)[kH][kT]) {
  using P = Packed<kType>;
  if constexpr (!std::is_same_v<A, XWords>) {
    static_assert(kType != TensorType::Q8_0, "q8_0 weights fill the unsigned byte");
    constexpr bool k16 = std::is_same_v<A, BlockQ16x>;
    constexpr int kParts = k16 ? 2 : 1;
    constexpr size_t kOff[2] = {k16 ? offsetof(BlockQ16x, hi) : offsetof(BlockQ8x, qs),
                                k16 ? offsetof(BlockQ16x, lo) : 0};
    const __m256i nibble = _mm256_set1_epi8(0x0f);
    __m256i s[kParts][kH][kT];
    for (int i = 0; i < kParts; ++i) {
      for (int h = 0; h < kH; ++h) {
        for (int t = 0; t < kT; ++t) s[i][h][t] = _mm256_setzero_si256();
      }
    }
    for (int p = 0; p < P::kChunks; ++p) {
      for (int h = 0; h < kH; ++h) {
        const __m256i z = load256(q + 64 * p + 32 * (h0 + h));
        const __m256i w0 = _mm256_and_si256(z, nibble);                        // 4p..4p+3
        const __m256i w1 = _mm256_and_si256(_mm256_srli_epi16(z, 4), nibble);  // 16 + 4p..
        for (int t = 0; t < kT; ++t) {
          for (int i = 0; i < kParts; ++i) {
            const uint8_t* x = xb[t] + kOff[i];
            s[i][h][t] = _mm256_add_epi16(
                s[i][h][t],
                _mm256_add_epi16(
                    _mm256_maddubs_epi16(w0, _mm256_set1_epi32(load_i32(x + 4 * p))),
                    _mm256_maddubs_epi16(w1, _mm256_set1_epi32(load_i32(x + 16 + 4 * p)))));
            __asm__("" : "+x"(s[i][h][t]));  // see the words branch
          }
        }
      }
    }
    for (int h = 0; h < kH; ++h) {
      for (int t = 0; t < kT; ++t) {
        isum[h][t] = _mm256_add_epi32(
            isum[h][t], _mm256_madd_epi16(s[0][h][t], _mm256_set1_epi16(k16 ? 256 : 1)));
        if constexpr (k16) {
          isum[h][t] =
              _mm256_add_epi32(isum[h][t], _mm256_madd_epi16(s[1][h][t], _mm256_set1_epi16(1)));
        }
      }
    }
  } else {
    for (int p = 0; p < P::kChunks; ++p) {
      for (int h = 0; h < kH; ++h) {
        __m256i v[2];
        q8_words(q + 64 * p + 32 * (h0 + h), v);
        for (int t = 0; t < kT; ++t) {
          const auto* w = reinterpret_cast<const int16_t*>(xb[t] + offsetof(XWords, w));
          for (int j = 0; j < 2; ++j) {
            const __m256i xw = _mm256_set1_epi32(load_i32(w + 4 * p + 2 * j));
            isum[h][t] = _mm256_add_epi32(isum[h][t], _mm256_madd_epi16(v[j], xw));
          }
          // Keep the running sum in its register: left free, GCC regroups the
          // block's 16+ products into a tree and spills them all to the stack.
          __asm__("" : "+x"(isum[h][t]));
        }
      }
    }
  }
}

// Rows [8 h0, 8 (h0 + kH)) of a group x kT tokens (activation blocks of
// type A, tokens xs bytes apart) over all nb blocks; `live` of the group's 16
// rows are stored.
template <TensorType kType, class A, int kH, int kT>
void micro(const uint8_t* group, int64_t nb, const uint8_t* x, size_t xs, int h0, int64_t live,
           float* y, int64_t ldy) {
  using P = Packed<kType>;
  static_assert(offsetof(A, d) == 0 && offsetof(A, sum) == 4);
  constexpr size_t kBlock = sizeof(A);
  const uint8_t* scales = group;
  const uint8_t* quants = group + size_t(nb) * P::kScale;
  __m256 acc[kH][kT];
  for (int h = 0; h < kH; ++h) {
    for (int t = 0; t < kT; ++t) acc[h][t] = _mm256_setzero_ps();
  }
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* q = quants + size_t(b) * P::kQuant;
    if constexpr (kT == 1 && kH == 2) {
      // Groups lie back to back, so this runs on into the next group's
      // scales and quants: the one stream never restarts cold.
      for (size_t p = 0; p < P::kQuant; p += 64) {
        _mm_prefetch(reinterpret_cast<const char*>(q + kPrefetchAhead + p), _MM_HINT_T0);
        _mm_prefetch(reinterpret_cast<const char*>(q + kPrefetchFar + p), _MM_HINT_T1);
      }
    }
    const uint8_t* xb[kT];
    __m256 dx[kT], dsum[kT];  // d_x, and d_x * sum_x for q4_1's minimum term
    __m256i isum[kH][kT];
    for (int t = 0; t < kT; ++t) {
      xb[t] = x + size_t(t) * xs + size_t(b) * kBlock;
      const float d = load_f32(xb[t]);
      const int32_t sum = load_i32(xb[t] + 4);
      dx[t] = _mm256_set1_ps(d);
      dsum[t] = _mm256_set1_ps(d * float(sum));
      const __m256i seed =
          P::kOffset ? _mm256_set1_epi32(-P::kOffset * sum) : _mm256_setzero_si256();
      for (int h = 0; h < kH; ++h) isum[h][t] = seed;
    }
    block_dots<kType, A, kH, kT>(q, xb, h0, isum);
    const uint8_t* sc = scales + size_t(b) * P::kScale;
    for (int h = 0; h < kH; ++h) {
      const __m256 d =
          _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(sc + 16 * (h0 + h))));
      for (int t = 0; t < kT; ++t) {
        const __m256 dd = _mm256_mul_ps(d, dx[t]);
        acc[h][t] = _mm256_fmadd_ps(dd, _mm256_cvtepi32_ps(isum[h][t]), acc[h][t]);
      }
      if constexpr (kType == TensorType::Q4_1) {
        const __m256 m = _mm256_cvtph_ps(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(sc + 32 + 16 * (h0 + h))));
        for (int t = 0; t < kT; ++t) {
          acc[h][t] = _mm256_fmadd_ps(m, dsum[t], acc[h][t]);
        }
      }
    }
  }
  for (int h = 0; h < kH; ++h) {
    for (int t = 0; t < kT; ++t)
      store_rows(y + t * ldy + 8 * (h0 + h), acc[h][t], live - 8 * (h0 + h));
  }
}

template <TensorType kType, class A, int kH, int kT>
void tokens_tail(const uint8_t* g, int64_t nb, const uint8_t* x, size_t xs, int64_t live, float* y,
                 int64_t ldy, int64_t left) {
  if constexpr (kT > 1) {
    if (left < kT) return tokens_tail<kType, A, kH, kT - 1>(g, nb, x, xs, live, y, ldy, left);
  }
  micro<kType, A, kH, kT>(g, nb, x, xs, 0, live, y, ldy);
}

// tn tokens against rows [0, 8 kH) of one group, kTokens at a time.
template <TensorType kType, class A, int kH>
void token_steps(const uint8_t* g, int64_t nb, const uint8_t* x, size_t xs, int64_t live, float* y,
                 int64_t ldy, int64_t tn) {
  int64_t t = 0;
  for (; t + kTokens <= tn; t += kTokens) {
    micro<kType, A, kH, kTokens>(g, nb, x + size_t(t) * xs, xs, 0, live, y + t * ldy, ldy);
  }
  if (t < tn) {
    tokens_tail<kType, A, kH, kTokens - 1>(g, nb, x + size_t(t) * xs, xs, live, y + t * ldy, ldy,
                                           tn - t);
  }
}

// tn tokens against one group: both halves at once (for a single token,
// decode, so each cache line is read once), or only the first if the rest
// lies past the matrix.
template <TensorType kType, class A>
void group_tokens(const uint8_t* g, int64_t nb, const uint8_t* x, size_t xs, int64_t live, float* y,
                  int64_t ldy, int64_t tn) {
  if (tn == 1) return micro<kType, A, 2, 1>(g, nb, x, xs, 0, live, y, ldy);
  if (live <= 8) return token_steps<kType, A, 1>(g, nb, x, xs, live, y, ldy, tn);
  token_steps<kType, A, 2>(g, nb, x, xs, live, y, ldy, tn);
}

template <TensorType kType, class X>
void packed_tile(const uint8_t* w, size_t w_stride, int64_t R, const uint8_t* x, size_t x_stride,
                 int64_t T, int64_t n, float* y, int64_t ldy) {
  const int64_t nb = n / 32;
  if constexpr (kType != TensorType::Q8_0) {  // in place
    for (int64_t r = 0; r < R; r += kPackRows) {
      group_tokens<kType, X>(w + size_t(r / kPackRows) * w_stride, nb, x, x_stride,
                             std::min(kPackRows, R - r), y + r, ldy, T);
    }
    return;
  }
  thread_local std::vector<XWords> words;
  words.resize(size_t(std::min(T, kChunkTokens) * nb));
  const auto* wx = reinterpret_cast<const uint8_t*>(words.data());
  const size_t ws = size_t(nb) * sizeof(XWords);
  for (int64_t t0 = 0; t0 < T; t0 += kChunkTokens) {
    const int64_t tn = std::min(kChunkTokens, T - t0);
    for (int64_t t = 0; t < tn; ++t) {
      const X* xt = reinterpret_cast<const X*>(x + size_t(t0 + t) * x_stride);
      for (int64_t b = 0; b < nb; ++b) to_words(xt + b, &words[size_t(t * nb + b)]);
    }
    for (int64_t r = 0; r < R; r += kPackRows) {
      group_tokens<kType, XWords>(w + size_t(r / kPackRows) * w_stride, nb, wx, ws,
                                  std::min(kPackRows, R - r), y + t0 * ldy + r, ldy, tn);
    }
  }
}

}  // namespace

const GemmKernel kGemmQ8_0PackedAvx2{
    TensorType::Q8_0,        Isa::kAvx2,
    ActivationKind::kQ8,     packed_tile<TensorType::Q8_0, BlockQ8x>,
    WeightLayout::kPacked16, kPrefillRows};
const GemmKernel kGemmQ4_0PackedAvx2{
    TensorType::Q4_0,        Isa::kAvx2,
    ActivationKind::kQ8,     packed_tile<TensorType::Q4_0, BlockQ8x>,
    WeightLayout::kPacked16, kPrefillRows};
const GemmKernel kGemmQ4_1PackedAvx2{
    TensorType::Q4_1,        Isa::kAvx2,
    ActivationKind::kQ8,     packed_tile<TensorType::Q4_1, BlockQ8x>,
    WeightLayout::kPacked16, kPrefillRows};
const GemmKernel kGemmQ8_0Q16PackedAvx2{
    TensorType::Q8_0,        Isa::kAvx2,
    ActivationKind::kQ16,    packed_tile<TensorType::Q8_0, BlockQ16x>,
    WeightLayout::kPacked16, kPrefillRows};
const GemmKernel kGemmQ4_0Q16PackedAvx2{
    TensorType::Q4_0,        Isa::kAvx2,
    ActivationKind::kQ16,    packed_tile<TensorType::Q4_0, BlockQ16x>,
    WeightLayout::kPacked16, kPrefillRows};
const GemmKernel kGemmQ4_1Q16PackedAvx2{
    TensorType::Q4_1,        Isa::kAvx2,
    ActivationKind::kQ16,    packed_tile<TensorType::Q4_1, BlockQ16x>,
    WeightLayout::kPacked16, kPrefillRows};

}  // namespace memwall::kernels
