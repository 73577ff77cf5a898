// Elementwise and per-row ops of the transformer block; scalar references.
// Shapes: T tokens, C model width, H heads, D head dim.
#pragma once

#include <cstdint>

namespace memwall::kernels {

// y = x / sqrt(mean(x^2) + eps) * w, for one row of n.
void rms_norm(const float* x, const float* w, float eps, int64_t n, float* y);

enum class RopeStyle { kNormal, kNeox };

// Rotates the first n_rot dims of each of n_heads heads (head dim D) in place.
// theta_i = pos / scale * base^(-2i/n_rot) / freq_factor[i] (factors may be null).
void rope(float* x, int64_t n_heads, int64_t D, int64_t n_rot, int64_t pos, float base, float scale,
          const float* freq_factors, RopeStyle style);

// The same in two steps, so a forward pass computes each position's angles
// once for all heads of Q and K: cs gets n_rot/2 (cos, sin) pairs.
void rope_angles(int64_t pos, int64_t n_rot, float base, float scale, const float* freq_factors,
                 float* cs);
void rope_apply(float* x, int64_t n_heads, int64_t D, int64_t n_rot, const float* cs,
                RopeStyle style);

// In place softmax over n values.
void softmax(float* x, int64_t n);

// gate = silu(gate) * up, n values.
void swiglu(float* gate, const float* up, int64_t n);

}  // namespace memwall::kernels
