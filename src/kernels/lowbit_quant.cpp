// See lowbit_quant.h. Reconstructions are computed exactly as the formats'
// dequantizers compute them (float d * level, float d * q + m), so a
// candidate's error here is the error of its bytes.
#include "kernels/lowbit_quant.h"

#include <algorithm>
#include <cmath>

#include "base/fp16.h"

namespace memwall::kernels::lowbit {
namespace {

constexpr auto kNf4Mid = [] {
  struct Mid {
    float v[15];
  } m{};
  for (int i = 0; i < 15; ++i) m.v[i] = (kNf4Levels[i] + kNf4Levels[i + 1]) / 2;
  return m;
}();

float weight_of(const float* importance, int i) {
  return importance ? importance[i] : 1.0f;
}

// round(v) clamped to [0, nmax], half up; NaN -> 0. Clamping first keeps the
// conversion in range, and truncation avoids a libm call (no SSE4.1 here).
uint8_t code_of(float v, int nmax) {
  v = v > 0 ? v : 0;
  v = v < float(nmax) ? v : float(nmax);
  return uint8_t(int(v + 0.5f));
}

}  // namespace

int nf4_index(float v) {
  // Binary search over the 15 midpoints: the index is how many lie below v.
  int i = v > kNf4Mid.v[7] ? 8 : 0;
  i += v > kNf4Mid.v[i + 3] ? 4 : 0;
  i += v > kNf4Mid.v[i + 1] ? 2 : 0;
  i += v > kNf4Mid.v[i] ? 1 : 0;
  return i;
}

double nf4_assign(const float* x, const float* importance, int n, float d, uint8_t* idx) {
  double err = 0;
  if (!(d > 0) || !std::isfinite(d)) {
    for (int i = 0; i < n; ++i) {
      idx[i] = 7;
      err += double(weight_of(importance, i)) * double(x[i]) * double(x[i]);
    }
    return err;
  }
  const float id = 1.0f / d;
  for (int i = 0; i < n; ++i) {
    idx[i] = uint8_t(nf4_index(x[i] * id));
    const double diff = double(x[i]) - double(d * kNf4Levels[idx[i]]);
    err += double(weight_of(importance, i)) * diff * diff;
  }
  return err;
}

void nf4_block(const float* x, const float* importance, uint16_t& d, uint8_t* idx) {
  float amax = 0;
  for (int i = 0; i < kGroup; ++i) amax = std::max(amax, std::fabs(x[i]));
  d = fp32_to_fp16(amax);
  double best = nf4_assign(x, importance, kGroup, fp16_to_fp32(d), idx);
  if (importance == nullptr || amax == 0) return;

  uint8_t cand[kGroup];
  // Leaves the indices for the f16-rounded scale in cand; false if unusable.
  const auto consider = [&](float scale) {
    const uint16_t h = fp32_to_fp16(scale);
    const float hf = fp16_to_fp32(h);
    if (!(hf > 0) || !std::isfinite(hf)) return false;
    const double err = nf4_assign(x, importance, kGroup, hf, cand);
    if (err < best) {
      best = err;
      d = h;
      std::copy(cand, cand + kGroup, idx);
    }
    return true;
  };
  // A smaller scale than max|x| clips the extreme weight to +-d but resolves
  // the rest more finely; importance decides which matters. Each candidate
  // is also refit by least squares for the levels it chose.
  for (int k = 0; k <= 16; ++k) {
    if (!consider(amax * (0.70f + 0.025f * float(k)))) continue;
    double sxl = 0, sll = 0;
    for (int i = 0; i < kGroup; ++i) {
      const double l = kNf4Levels[cand[i]], w = weight_of(importance, i);
      sxl += w * x[i] * l;
      sll += w * l * l;
    }
    if (sll > 0) consider(float(sxl / sll));
  }
}

uint16_t fp16_round_up(float v) {
  v = std::fabs(v);
  if (!(v <= 65504.0f)) return 0x7BFF;  // the largest finite half (also for NaN)
  uint16_t h = fp32_to_fp16(v);
  if (fp16_to_fp32(h) < v) ++h;  // positive halves are ordered like their bits
  return h;
}

namespace {

// sum w (x - (d q + m))^2 with the reconstruction as the dequantizer
// computes it; four partial sums (n is a multiple of 4) for speed, in the
// same order for every candidate, so equal bytes score equal.
double group_error(const float* x, const float* w, const uint8_t* q, float d, float m, int n) {
  double e[4] = {};
  for (int i = 0; i < n; i += 4) {
    for (int j = 0; j < 4; ++j) {
      const double diff = double(x[i + j]) - double(d * float(q[i + j]) + m);
      e[j] += double(w[i + j]) * diff * diff;
    }
  }
  return (e[0] + e[1]) + (e[2] + e[3]);
}

// The nearest codes for (d, m), into q. A function of its own, not a lambda:
// through captured references every byte stored to q may alias them (char
// aliasing), which forces reloads in the loop.
void assign_codes(const float* x, int n, int nmax, float d, float m, uint8_t* q) {
  const float id = 1.0f / d;
  for (int i = 0; i < n; ++i) q[i] = code_of((x[i] - m) * id, nmax);
}

// Weighted least squares of (d, m) for fixed codes; false if degenerate.
bool fit_group(const float* x, const float* w, const uint8_t* l, int n, float& d, float& m) {
  double sw = 0, sl = 0, sll = 0, sx = 0, slx = 0;
  for (int i = 0; i < n; ++i) {
    const double wi = w[i], li = l[i];
    sw += wi;
    sl += wi * li;
    sll += wi * li * li;
    sx += wi * x[i];
    slx += wi * li * x[i];
  }
  const double det = sw * sll - sl * sl;
  if (!(det > 0)) return false;
  d = float((sw * slx - sx * sl) / det);
  m = float((sll * sx - sl * slx) / det);
  return true;
}

}  // namespace

void asym_group(const AsymSearch& s, const float* x, const float* importance, uint16_t& d,
                uint16_t& m, uint8_t* q) {
  constexpr int n = kGroup;
  float min = x[0], max = x[0];
  for (int i = 1; i < n; ++i) {
    min = std::min(min, x[i]);
    max = std::max(max, x[i]);
  }
  float w[kGroup];
  for (int i = 0; i < n; ++i) w[i] = weight_of(importance, i);
  uint8_t cand[kGroup], L[kGroup];
  double best = INFINITY;

  // Codes for the f16-rounded (dd, mm) and their error; kept if the best.
  const auto consider = [&](float dd, float mm) {
    const uint16_t hd = fp32_to_fp16(dd), hm = fp32_to_fp16(mm);
    const float df = fp16_to_fp32(hd), mf = fp16_to_fp32(hm);
    if (!(df > 0) || !std::isfinite(df) || !std::isfinite(mf)) return;
    assign_codes(x, n, s.nmax, df, mf, cand);
    const double err = group_error(x, w, cand, df, mf, n);
    if (err < best) {
      best = err;
      d = hd;
      m = hm;
      std::copy(cand, cand + n, q);
    }
  };

  if (importance != nullptr) {
    // The reference answer first, scored with importance: the weighted
    // search only replaces it with something better.
    asym_group(s, x, nullptr, d, m, q);
    best = group_error(x, w, q, fp16_to_fp32(d), fp16_to_fp32(m), n);
  } else {
    // Zero scale with m = min always decodes (a constant group needs no more).
    d = 0;
    m = fp32_to_fp16(min);
    std::fill(q, q + n, uint8_t(0));
    best = group_error(x, w, q, 0.0f, fp16_to_fp32(m), n);
  }
  if (!(max > min)) return;
  consider((max - min) / float(s.nmax), min);
  float dd, mm;
  uint8_t prev[kGroup] = {};
  for (int k = 0; k <= s.nstep; ++k) {
    const float iscale = (float(s.nmax) + s.rmin + s.rdelta * float(k)) / (max - min);
    assign_codes(x, n, s.nmax, 1.0f / iscale, min, L);
    // Neighbouring scales often choose the same codes, hence the same fit.
    if (k > 0 && std::equal(L, L + n, prev)) continue;
    std::copy(L, L + n, prev);
    if (fit_group(x, w, L, n, dd, mm)) consider(dd, mm);
  }
  for (int r = 0; r < s.refine; ++r) {
    const double before = best;
    std::copy(q, q + n, L);
    if (fit_group(x, w, L, n, dd, mm)) consider(dd, mm);
    if (!(best < before)) break;
  }
}

}  // namespace memwall::kernels::lowbit
