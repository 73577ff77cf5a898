// w8a8: int8 weights with one scale per output channel (row), the weight side
// of SmoothQuant's W8A8 (Xiao et al. 2022, arXiv:2211.10438). A row of n
// weights is an 8-byte header, f32 d then int32 sum(q), and n int8 q with
// w = d * q, |q| <= 127. The sum lets integer kernels take the activations as
// unsigned bytes (x + 128) and subtract 128 * sum(q) once per row and token.
// 8 + 64 / n bits per weight (8.11 at n = 576). Activations meet it as int8
// with one scale per token (activations.h), so the row's dot is one integer
// sum and one float multiply.
#include <cmath>
#include <cstring>

#include "kernels/weight_format.h"

namespace memwall::kernels {
namespace {

constexpr size_t kHeader = 8;

struct Header {
  float d;
  int32_t sum;
};
static_assert(sizeof(Header) == kHeader);

Header load_header(const void* row) {
  Header h;
  std::memcpy(&h, row, kHeader);
  return h;
}

const int8_t* quants(const void* row) {
  return reinterpret_cast<const int8_t*>(static_cast<const uint8_t*>(row) + kHeader);
}

// Writes q = round(x / d) clamped to +-127 and the header; returns the
// importance-weighted squared error of the row.
double encode(const float* src, float d, int64_t n, const float* importance, void* dst) {
  auto* q = reinterpret_cast<int8_t*>(static_cast<uint8_t*>(dst) + kHeader);
  const float inv = d > 0 ? 1.0f / d : 0.0f;
  int32_t sum = 0;
  double err = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float v = std::nearbyint(src[i] * inv);
    const int8_t qi = int8_t(v > 127.0f ? 127.0f : v < -127.0f ? -127.0f : v);
    q[i] = qi;
    sum += qi;
    const double e = double(src[i]) - double(d) * qi;
    err += (importance ? importance[i] : 1.0) * e * e;
  }
  const Header h{d, sum};
  std::memcpy(dst, &h, kHeader);
  return err;
}

float abs_max(const float* src, int64_t n) {
  float m = 0;
  for (int64_t i = 0; i < n; ++i) m = std::fmax(m, std::fabs(src[i]));
  return m;
}

void quantize(const float* src, void* dst, int64_t n) {
  encode(src, abs_max(src, n) / 127.0f, n, nullptr, dst);
}

// With importance, try clipping the scale below absmax (clipped outliers
// cost their weight; every other weight gains resolution) and keep the scale
// with the least weighted error.
void quantize_weighted(const float* src, void* dst, int64_t n, const float* importance) {
  const float amax = abs_max(src, n);
  if (importance == nullptr || amax == 0) return quantize(src, dst, n);
  float best_d = amax / 127.0f;
  double best = encode(src, best_d, n, importance, dst);
  for (int step = 1; step <= 20; ++step) {
    const float d = amax * (1.0f - 0.01f * float(step)) / 127.0f;
    const double err = encode(src, d, n, importance, dst);
    if (err < best) best = err, best_d = d;
  }
  encode(src, best_d, n, importance, dst);
}

void dequantize(const void* src, float* dst, int64_t n) {
  const float d = load_header(src).d;
  const int8_t* q = quants(src);
  for (int64_t i = 0; i < n; ++i) dst[i] = d * float(q[i]);
}

float dot(const void* row, const float* x, int64_t n) {
  const int8_t* q = quants(row);
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += float(q[i]) * x[i];
  return load_header(row).d * s;
}

}  // namespace

const WeightCodec& codec_w8a8() {
  static const WeightCodec c{TensorType::W8A8, quantize, dequantize, dot, quantize_weighted};
  return c;
}

}  // namespace memwall::kernels
