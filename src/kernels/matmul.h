// Matrix products of a quantized weight matrix W [rows x cols] with f32
// activations: Y[t, r] = sum_c W[r, c] * X[t, c], for t < T (tokens).
#pragma once

#include <cstdint>

#include "base/thread_pool.h"
#include "kernels/matrix_view.h"

namespace memwall::kernels {

// X is [T x w.cols], Y is [T x w.rows], both row-major and contiguous.
// Validated by the caller (shapes come from the model spec); never throws.
void matmul(ThreadPool& pool, const MatrixView& w, const float* x, int64_t T, float* y);

// Only rows [row_begin, row_end) of W; Y is [T x (row_end - row_begin)].
void matmul_rows(ThreadPool& pool, const MatrixView& w, int64_t row_begin, int64_t row_end,
                 const float* x, int64_t T, float* y);

}  // namespace memwall::kernels
