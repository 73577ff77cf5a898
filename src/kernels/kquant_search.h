// The scale searches behind GGUF's k-quants (q4_K, q5_K, q6_K), written to
// reproduce llama.cpp's reference quantizers bit for bit: the same rounding
// (nearest_int), the same float expressions in the same order, the same
// candidate scales. GGUF files made by either tool are then identical, and
// tests compare our bytes with llama.cpp's (tests/data/kquant).
//
// Float evaluation order matters here: these files are compiled without FMA
// contraction (ISO C++ mode), as ggml's portable C is, so a*b + c rounds twice.
#pragma once

#include <cstdint>

namespace memwall::kernels::kquant {

constexpr int kSuper = 256;  // weights per super-block (QK_K)

// Round to nearest, ties to even, for |x| < 2^22: the float's mantissa after
// adding 1.5 * 2^23 holds the rounded integer.
int nearest_int(float x);

// Symmetric levels l in [-nmax, nmax): scale s minimizing sum w (x - s l)^2
// over 19 candidate inverse scales around nmax / max|x|; w = weights, or x^2
// when weights is null (llama.cpp make_qx_quants, rmse_type 1). L gets l + nmax.
// The per-weight error weights llama.cpp's imatrix quantizers of 32-weight
// blocks (q4_0, q4_1, q5_0, q5_1) use: importance * sqrt(sigma2 + x^2), with
// sigma2 the whole row's mean square (row_mean_square).
float row_mean_square(const float* x, int64_t n);
void block_error_weights(const float* x, const float* importance, float sigma2, int n,
                         float* weights);

float make_qx_quants(int n, int nmax, const float* x, int8_t* L, const float* weights);

// Asymmetric levels l in [0, nmax] with x ~ s l - m: least-squares scale and
// minimum for nstep + 1 candidate inverse scales (rmin + rdelta * is + nmax) /
// (max - min), keeping the lowest weighted squared error. Returns s; *the_min
// gets m >= 0 (llama.cpp make_qkx2_quants, use_mad false).
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                       float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep);
// The same search as the importance-weighted quantizers run it (llama.cpp
// make_qkx3_quants): robust to a minimum close to the maximum.
float make_qkx3_quants(int n, int nmax, const float* x, const float* weights, uint8_t* L,
                       float* the_min, uint8_t* Laux, float rmin, float rdelta, int nstep);

// Non-negative levels l in [0, nmax] for non-negative x (the sub-block scales
// and minimums themselves), weighted, refined by coordinate descent
// (llama.cpp make_qp_quants).
float make_qp_quants(int n, int nmax, const float* x, uint8_t* L, const float* weights);

// q4_K / q5_K keep 8 six-bit scales and 8 six-bit minimums in 12 bytes:
//   bytes 0..3:  scale j (low 6 bits), bits 6-7 = bits 4-5 of scale j + 4
//   bytes 4..7:  min j (low 6 bits),   bits 6-7 = bits 4-5 of min j + 4
//   bytes 8..11: low nibble = bits 0-3 of scale j + 4, high = of min j + 4
void pack_scale_min_k4(const uint8_t* ls, const uint8_t* lm, uint8_t* packed);
void unpack_scale_min_k4(const uint8_t* packed, uint8_t* sc, uint8_t* m);

// The part q4_K and q5_K share: per super-block, choose the f16 scale d and
// minimum dmin and the 8 packed sub-block scales and minimums, and requantize
// every weight to a level in [0, nmax] against them. importance (256 floats,
// or null) selects llama.cpp's weighted quantizer over the reference one.
struct KScaleSearch {
  int nmax;            // 15 (q4_K) or 31 (q5_K)
  float rmin, rdelta;  // make_qkx2_quants' candidates (reference path)
  int nstep;
};
void quantize_super_k4(const KScaleSearch& s, const float* x, const float* importance, uint16_t& d,
                       uint16_t& dmin, uint8_t* scales12, uint8_t* L);

}  // namespace memwall::kernels::kquant
