#include "kernels/matmul.h"

#include <algorithm>

#include "kernels/activations_k.h"
#include "kernels/gemm.h"
#include "kernels/isa.h"
#include "kernels/vector_ops.h"
#include "kernels/w8a8_kernels.h"

namespace memwall::kernels {

void MatmulInput::set(const float* x, int64_t T, int64_t cols) {
  x_ = x;
  T_ = T;
  cols_ = cols;
  quantized_ = false;
  quantized16_ = false;
  quantized_k8_ = false;
  quantized_k16_ = false;
  quantized_rows_ = false;
}

template <class Block>
const Block* MatmulInput::quantized(ThreadPool& pool, std::vector<Block>& blocks, bool& done,
                                    void (*quantize)(const float*, Block*, int64_t),
                                    int64_t values_per_block) {
  if (!done) {
    const int64_t per_row = cols_ / values_per_block;
    if (blocks.size() < size_t(T_ * per_row)) blocks.resize(size_t(T_ * per_row));
    pool.parallel_for(
        T_,
        [&](int64_t b, int64_t e, int) {
          for (int64_t t = b; t < e; ++t)
            quantize(x_ + t * cols_, blocks.data() + t * per_row, cols_);
        },
        8);
    done = true;
  }
  return blocks.data();
}

size_t MatmulInput::bytes_for(int64_t T, int64_t cols, Precision precision, InputForms forms) {
  if (precision == Precision::kExact) return 0;
  const size_t blocks = size_t(T) * size_t(cols / 32);
  const size_t super_blocks = size_t(T) * size_t(cols / kQK);
  size_t bytes = 0;
  if (forms.blocks) {
    bytes += precision == Precision::kFast
                 ? std::max(blocks * sizeof(BlockQ16x), super_blocks * sizeof(BlockQ16K))
                 : std::max(blocks * sizeof(BlockQ8x), super_blocks * sizeof(BlockQ8K));
  }
  if (forms.q8_rows) bytes += size_t(T) * q8_row_stride(cols);
  return bytes;
}

void MatmulInput::reserve(int64_t T, int64_t cols, Precision precision, InputForms forms) {
  if (precision == Precision::kExact) return;
  const size_t blocks = size_t(T) * size_t(cols / 32);
  if (forms.blocks && precision == Precision::kFast && q16_.size() < blocks) q16_.resize(blocks);
  if (forms.blocks && precision == Precision::kInt8 && q8_.size() < blocks) q8_.resize(blocks);
  const size_t lines = size_t(T) * q8_row_stride(cols) / sizeof(Line);
  if (forms.q8_rows && q8_rows_.size() < lines) q8_rows_.resize(lines);
}

const BlockQ8x* MatmulInput::q8(ThreadPool& pool) {
  return quantized(pool, q8_, quantized_, quantize_activations_q8, 32);
}

const BlockQ16x* MatmulInput::q16(ThreadPool& pool) {
  return quantized(pool, q16_, quantized16_, quantize_activations_q16, 32);
}

const BlockQ8K* MatmulInput::q8k(ThreadPool& pool) {
  return quantized(pool, q8k_, quantized_k8_, quantize_activations_q8k, kQK);
}

const BlockQ16K* MatmulInput::q16k(ThreadPool& pool) {
  return quantized(pool, q16k_, quantized_k16_, quantize_activations_q16k, kQK);
}

const uint8_t* MatmulInput::q8_rows(ThreadPool& pool) {
  static_assert(sizeof(Line) == 64);
  const size_t stride = q8_row_stride(cols_);
  if (!quantized_rows_) {
    const size_t lines = size_t(T_) * stride / sizeof(Line);
    if (q8_rows_.size() < lines) q8_rows_.resize(lines);
    uint8_t* out = q8_rows_.data()->bytes;
    pool.parallel_for(
        T_,
        [&](int64_t b, int64_t e, int) {
          for (int64_t t = b; t < e; ++t)
            quantize_activations_q8_row(x_ + t * cols_, out + size_t(t) * stride, cols_);
        },
        8);
    quantized_rows_ = true;
  }
  return q8_rows_.data()->bytes;
}

namespace {

// The exact path for quantized formats: decode a row to f32 once, then reuse
// it for every token. (Float formats use their GEMM kernels, which are exact.)
void exact_rows(const MatrixView& w, int64_t r0, int64_t r1, const float* x, int64_t T, float* y,
                int64_t ldy, std::vector<float>& row, const VectorOps& ops) {
  const int64_t n = w.cols;
  row.resize(size_t(n));
  for (int64_t r = r0; r < r1; ++r) {
    if (T == 1) {
      y[r] = w.codec->dot(w.row(r), x, n);
      continue;
    }
    w.codec->dequantize_row(w.row(r), row.data(), n);
    for (int64_t t = 0; t < T; ++t) y[t * ldy + r] = ops.dot(row.data(), x + t * n, n);
  }
}

bool is_float_format(TensorType t) {
  return t == TensorType::F32 || t == TensorType::F16 || t == TensorType::BF16;
}

// Rows per work item: small for decode so both cores get equal shares of a
// memory-bound pass, larger for prefill so a tile of weights stays in cache
// while every token block reuses it.
constexpr int64_t kDecodeRows = 16;
constexpr int64_t kPrefillRows = 64;
constexpr int64_t kTokenBlock = 64;

}  // namespace

const GemmKernel* choose_kernel(const MatrixView& w, Isa isa, Precision precision, bool packed) {
  const GemmKernel* k = nullptr;
  if (is_float_format(w.type)) {
    k = find_gemm_kernel(w.type, isa);
  } else if (w.type == TensorType::W8A8) {
    // Int8 activations per token are part of the type, so kFast and kInt8
    // both take its kernel (rows too wide for an exact int32 sum, none
    // seen in practice, keep the codec path).
    if (precision != Precision::kExact && w.cols <= kW8A8MaxCols) {
      k = find_gemm_kernel(w.type, isa, WeightLayout::kRows, ActivationKind::kQ8Row);
    }
  } else if (precision != Precision::kExact) {
    // kFast wants 16-bit activations: the packed kernels (q4_0, q4_1,
    // q8_0 on AVX2 and AVX-512 VNNI), the k-quant/ternary row kernels or
    // the BlockQ16x row kernels (low-bit types, q5_0, q5_1; q4_0, q4_1,
    // q8_0 left in GGUF rows) take them; formats with none keep the exact
    // path (effective_precision says so). kInt8 takes any 8-bit kernel.
    const bool fast = precision == Precision::kFast;
    const ActivationKind act = fast ? ActivationKind::kQ16 : ActivationKind::kQ8;
    if (packed) k = find_gemm_kernel(w.type, isa, WeightLayout::kPacked16, act);
    if (k == nullptr && !fast) k = find_gemm_kernel(w.type, isa);
    if (k == nullptr && w.cols % kQK == 0) {
      k = find_gemm_kernel(w.type, isa, WeightLayout::kRows,
                           fast ? ActivationKind::kQ16K : ActivationKind::kQ8K);
    }
    // nf4, nf4_dq, q2_g64, q3_g64, q5_0, q5_1, and unpacked q4_0, q4_1,
    // q8_0: row kernels with BlockQ16x (kInt8 found BlockQ8x ones above).
    if (k == nullptr && fast) {
      k = find_gemm_kernel(w.type, isa, WeightLayout::kRows, ActivationKind::kQ16);
    }
  }
  return k;
}

void matmul_group(ThreadPool& pool, const std::vector<MatmulOutput>& group, MatmulInput& x,
                  Precision precision) {
  const int64_t T = x.tokens();
  const Isa isa = active_isa();
  const VectorOps& ops = vector_ops(isa);
  struct Plan {
    const GemmKernel* kernel;  // null: the exact codec path
    const uint8_t* xbytes;
    size_t x_stride;
  };
  std::vector<Plan> plans(group.size());
  bool need[6] = {};  // by ActivationKind
  for (size_t i = 0; i < group.size(); ++i) {
    const MatrixView& w = *group[i].w;
    Plan& p = plans[i];
    p.kernel = choose_kernel(w, isa, precision, w.packed != nullptr);
    if (p.kernel) need[static_cast<int>(p.kernel->activation)] = true;
  }
  const BlockQ8x* q8 = need[static_cast<int>(ActivationKind::kQ8)] ? x.q8(pool) : nullptr;
  const BlockQ16x* q16 = need[static_cast<int>(ActivationKind::kQ16)] ? x.q16(pool) : nullptr;
  const BlockQ8K* q8k = need[static_cast<int>(ActivationKind::kQ8K)] ? x.q8k(pool) : nullptr;
  const BlockQ16K* q16k = need[static_cast<int>(ActivationKind::kQ16K)] ? x.q16k(pool) : nullptr;
  const uint8_t* q8_rows =
      need[static_cast<int>(ActivationKind::kQ8Row)] ? x.q8_rows(pool) : nullptr;
  for (Plan& p : plans) {
    const ActivationKind act = p.kernel ? p.kernel->activation : ActivationKind::kF32;
    if (act == ActivationKind::kQ8) {
      p.xbytes = reinterpret_cast<const uint8_t*>(q8);
      p.x_stride = size_t(x.cols() / 32) * sizeof(BlockQ8x);
    } else if (act == ActivationKind::kQ16) {
      p.xbytes = reinterpret_cast<const uint8_t*>(q16);
      p.x_stride = size_t(x.cols() / 32) * sizeof(BlockQ16x);
    } else if (act == ActivationKind::kQ8K) {
      p.xbytes = reinterpret_cast<const uint8_t*>(q8k);
      p.x_stride = size_t(x.cols() / kQK) * sizeof(BlockQ8K);
    } else if (act == ActivationKind::kQ16K) {
      p.xbytes = reinterpret_cast<const uint8_t*>(q16k);
      p.x_stride = size_t(x.cols() / kQK) * sizeof(BlockQ16K);
    } else if (act == ActivationKind::kQ8Row) {
      p.xbytes = q8_rows;
      p.x_stride = q8_row_stride(x.cols());
    } else {
      p.xbytes = reinterpret_cast<const uint8_t*>(x.f32());
      p.x_stride = size_t(x.cols()) * sizeof(float);
    }
  }

  // Work items: (matrix, first row) chunks over the union of the group's rows.
  const auto chunk_rows = [&](size_t i) {
    if (T == 1) return kDecodeRows;
    const GemmKernel* k = plans[i].kernel;
    return k && k->prefill_rows > 0 ? k->prefill_rows : kPrefillRows;
  };
  std::vector<std::pair<int, int64_t>> items;
  for (size_t i = 0; i < group.size(); ++i) {
    for (int64_t r = 0; r < group[i].w->rows; r += chunk_rows(i)) items.emplace_back(int(i), r);
  }
  pool.parallel_for(int64_t(items.size()), [&](int64_t b, int64_t e, int) {
    std::vector<float> row;
    for (int64_t k = b; k < e; ++k) {
      const auto [i, r0] = items[size_t(k)];
      const MatrixView& w = *group[size_t(i)].w;
      float* y = group[size_t(i)].y;
      const int64_t ldy = group[size_t(i)].ldy > 0 ? group[size_t(i)].ldy : w.rows;
      const int64_t r1 = std::min(w.rows, r0 + chunk_rows(size_t(i)));
      const Plan& p = plans[size_t(i)];
      if (!p.kernel) {
        exact_rows(w, r0, r1, x.f32(), T, y, ldy, row, ops);
        continue;
      }
      const bool packed = p.kernel->layout == WeightLayout::kPacked16;
      const uint8_t* wr = packed ? w.packed_group(r0) : w.row(r0);
      const size_t w_stride = packed ? w.packed_group_bytes : w.row_bytes;
      for (int64_t t0 = 0; t0 < T; t0 += kTokenBlock) {
        const int64_t tn = std::min(kTokenBlock, T - t0);
        p.kernel->tile(wr, w_stride, r1 - r0, p.xbytes + size_t(t0) * p.x_stride, p.x_stride, tn,
                       w.cols, y + t0 * ldy + r0, ldy);
      }
    }
  });
}

void matmul(ThreadPool& pool, const MatrixView& w, const float* x, int64_t T, float* y,
            Precision precision) {
  MatmulInput input;
  input.set(x, T, w.cols);
  matmul_group(pool, {{&w, y}}, input, precision);
}

}  // namespace memwall::kernels
