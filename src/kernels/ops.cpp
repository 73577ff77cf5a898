#include "kernels/ops.h"

#include <cmath>

namespace memwall::kernels {

void rms_norm(const float* x, const float* w, float eps, int64_t n, float* y) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += double(x[i]) * x[i];
  float scale = float(1.0 / std::sqrt(ss / double(n) + eps));
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
}

void rope(float* x, int64_t n_heads, int64_t D, int64_t n_rot, int64_t pos, float base, float scale,
          const float* freq_factors, RopeStyle style) {
  const int64_t half = n_rot / 2;
  for (int64_t i = 0; i < half; ++i) {
    double inv_freq = std::pow(double(base), -2.0 * double(i) / double(n_rot));
    if (freq_factors) inv_freq /= freq_factors[i];
    double theta = double(pos) / double(scale) * inv_freq;
    float c = float(std::cos(theta)), s = float(std::sin(theta));
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + h * D;
      int64_t a = style == RopeStyle::kNormal ? 2 * i : i;
      int64_t b = style == RopeStyle::kNormal ? 2 * i + 1 : i + half;
      float x0 = v[a], x1 = v[b];
      v[a] = x0 * c - x1 * s;
      v[b] = x0 * s + x1 * c;
    }
  }
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
