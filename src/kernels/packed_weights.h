// Weight repacking for wide SIMD: quantized matrices (q4_0, q4_1, q8_0)
// rearranged at load into groups of 16 interleaved rows, so one 512-bit
// register holds 4 consecutive weights of each of 16 rows and one vpdpbusd
// against 4 broadcast activation bytes yields 16 rows' partial dots at once
// (AVX2 reads each 64-byte chunk as two ymm of 8 rows: gemm_packed_avx2.cpp).
// The GGUF row layout needs shuffles to reach that shape on every token; the
// packed one needs none (decode) or amortizes nothing (prefill reuses it).
//
// A group (16 rows, nb = cols / 32 blocks) is two arrays, scales first, so
// decode reads one sequential stream (a group's scales, its quants, the next
// group's scales, ...) that a prefetch a fixed distance ahead keeps warm:
//   scales: nb entries of S bytes: 16 f16 d (q4_1: then 16 f16 m).
//   quants: nb blocks of Q bytes; block b is Q / 64 chunks of 64 bytes; in
//           chunk p, bytes [4i, 4i + 4) belong to row i:
//             q4_0, q4_1 (Q = 256): the row's GGUF nibble bytes qs[4p .. 4p+3]
//               (low nibbles: weights 4p..4p+3, high: 16+4p..16+4p+3);
//             q8_0 (Q = 512): the row's qs[4p .. 4p+3] XOR 0x80 (w + 128 as
//               unsigned, so vpdpbusd can take weights as its unsigned side).
// Rows past the matrix's end (the last group of a matrix whose row count is
// not a multiple of 16) are zero and never stored by kernels.
#pragma once

#include <cstddef>
#include <cstdint>

#include "format/tensor_type.h"

namespace memwall::kernels {

constexpr int64_t kPackRows = 16;

// True for the formats that have a packed layout.
bool packable(TensorType type);

struct PackedShape {
  size_t quant_bytes;  // Q: per block of 16 rows x 32 weights
  size_t scale_bytes;  // S: per block
  size_t group_bytes;  // one group of 16 rows: nb * (Q + S)
  int64_t groups;      // ceil(rows / 16)
  size_t total_bytes() const { return group_bytes * size_t(groups); }
};
PackedShape packed_shape(TensorType type, int64_t rows, int64_t cols);

// Packs groups [g0, g1) of a row-major GGUF matrix (rows `row_bytes` apart)
// into dst, which points at the packed matrix's start. Threads may pack
// disjoint group ranges at once.
void pack_groups(TensorType type, const uint8_t* src, size_t row_bytes, int64_t rows, int64_t cols,
                 int64_t g0, int64_t g1, uint8_t* dst);

}  // namespace memwall::kernels
