#include "kernels/ops.h"

#include <cmath>
#include <vector>

namespace memwall::kernels {

void rms_norm(const float* x, const float* w, float eps, int64_t n, float* y) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += double(x[i]) * x[i];
  float scale = float(1.0 / std::sqrt(ss / double(n) + eps));
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
}

void rope_angles(int64_t pos, int64_t n_rot, float base, float scale, const float* freq_factors,
                 float* cs) {
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    double inv_freq = std::pow(double(base), -2.0 * double(i) / double(n_rot));
    if (freq_factors) inv_freq /= freq_factors[i];
    const double theta = double(pos) / double(scale) * inv_freq;
    cs[2 * i] = float(std::cos(theta));
    cs[2 * i + 1] = float(std::sin(theta));
  }
}

void rope_apply(float* x, int64_t n_heads, int64_t D, int64_t n_rot, const float* cs,
                RopeStyle style) {
  const int64_t half = n_rot / 2;
  for (int64_t h = 0; h < n_heads; ++h) {
    float* v = x + h * D;
    for (int64_t i = 0; i < half; ++i) {
      const float c = cs[2 * i], s = cs[2 * i + 1];
      const int64_t a = style == RopeStyle::kNormal ? 2 * i : i;
      const int64_t b = style == RopeStyle::kNormal ? 2 * i + 1 : i + half;
      const float x0 = v[a], x1 = v[b];
      v[a] = x0 * c - x1 * s;
      v[b] = x0 * s + x1 * c;
    }
  }
}

void rope(float* x, int64_t n_heads, int64_t D, int64_t n_rot, int64_t pos, float base, float scale,
          const float* freq_factors, RopeStyle style) {
  std::vector<float> cs(static_cast<size_t>(n_rot));
  rope_angles(pos, n_rot, base, scale, freq_factors, cs.data());
  rope_apply(x, n_heads, D, n_rot, cs.data(), style);
}

void softmax(float* x, int64_t n) {
  float max = x[0];
  for (int64_t i = 1; i < n; ++i) max = std::fmax(max, x[i]);
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  float inv = float(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

void swiglu(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

}  // namespace memwall::kernels
