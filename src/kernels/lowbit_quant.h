// The searches behind memwall's own low-bit types (nf4, nf4_dq, q2_g64,
// q3_g64; layouts in docs/quant-types.md): NF4 index and scale choice, and
// the asymmetric (scale, minimum) search of the 2- and 3-bit group formats.
//
// Every search scores candidates after rounding d (and m) to f16, with the
// codes re-chosen for the rounded values, so the error it minimizes is the
// error of the bytes written. Importance (one float per weight, as an
// imatrix gives) weights that error; null importance is the reference
// encoding, and the weighted search always includes the reference's answer
// among its candidates, so it is never worse in weighted error.
#pragma once

#include <cstdint>

namespace memwall::kernels::lowbit {

constexpr int kGroup = 64;  // weights per block in all four types

// QLoRA's NF4 levels, as bitsandbytes' get_4bit_type("nf4") lists them.
inline constexpr float kNf4Levels[16] = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};

// The index of the level nearest v (v = weight / scale); a tie goes to the
// lower level, as bitsandbytes' `x > midpoint` tests do.
int nf4_index(float v);

// Indices of n weights against scale d (0: all index 7, the zero level), and
// the importance-weighted squared error of the result (plain when null).
double nf4_assign(const float* x, const float* importance, int n, float d, uint8_t* idx);

// One NF4 block of kGroup weights: f16 scale and indices. Reference: d =
// max|x| (bitsandbytes). With importance: the best of the reference and
// scales around it, each also refit by weighted least squares.
void nf4_block(const float* x, const float* importance, uint16_t& d, uint8_t* idx);

// The f16 at or above |v| (so a scale stored in f16 still covers v).
uint16_t fp16_round_up(float v);

// Asymmetric codes q in [0, nmax] with x ~ d * q + m for one group of kGroup
// weights: the plain min/max fit and nstep + 1 candidate inverse
// scales (nmax + rmin + rdelta * k) / (max - min), each refit by (weighted) least squares, then
// `refine` rounds of re-choosing codes for the best (d, m) and refitting (llama.cpp's
// make_qkx2_quants, with m of either sign).
struct AsymSearch {
  int nmax;
  float rmin, rdelta;
  int nstep;
  int refine;
};
void asym_group(const AsymSearch& s, const float* x, const float* importance, uint16_t& d,
                uint16_t& m, uint8_t* q);

}  // namespace memwall::kernels::lowbit
