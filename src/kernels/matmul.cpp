#include "kernels/matmul.h"

#include <algorithm>
#include <vector>

namespace memwall::kernels {

namespace {
float dot_f32(const float* a, const float* b, int64_t n) {
  float s = 0;
  for (int64_t i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
}
}  // namespace

void matmul_rows(ThreadPool& pool, const MatrixView& w, int64_t row_begin, int64_t row_end,
                 const float* x, int64_t T, float* y) {
  const int64_t n_rows = row_end - row_begin;
  if (T == 1) {
    pool.parallel_for(
        n_rows,
        [&](int64_t begin, int64_t end, int) {
          for (int64_t r = begin; r < end; ++r)
            y[r] = w.codec->dot(w.row(row_begin + r), x, w.cols);
        },
        16);
    return;
  }
  // Prefill: decode each row once, then reuse it for every token.
  pool.parallel_for(
      n_rows,
      [&](int64_t begin, int64_t end, int) {
        std::vector<float> buf(size_t(w.cols));
        for (int64_t r = begin; r < end; ++r) {
          w.codec->dequantize_row(w.row(row_begin + r), buf.data(), w.cols);
          for (int64_t t = 0; t < T; ++t) {
            y[t * n_rows + r] = dot_f32(buf.data(), x + t * w.cols, w.cols);
          }
        }
      },
      4);
}

void matmul(ThreadPool& pool, const MatrixView& w, const float* x, int64_t T, float* y) {
  matmul_rows(pool, w, 0, w.rows, x, T, y);
}

}  // namespace memwall::kernels
