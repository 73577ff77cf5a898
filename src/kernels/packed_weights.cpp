#include "kernels/packed_weights.h"

#include <algorithm>
#include <cstring>

#include "base/error.h"

namespace memwall::kernels {
namespace {

struct Layout {
  size_t block_bytes;   // GGUF bytes per block of 32 weights
  size_t head;          // bytes of scales before qs in a GGUF block
  size_t qs_bytes;      // bytes of qs per GGUF block
  size_t scale_fields;  // f16 fields in the head (d, or d and m)
  uint8_t flip;         // XOR applied to quant bytes
};

Layout layout_of(TensorType type) {
  switch (type) {
    case TensorType::Q4_0:
      return {18, 2, 16, 1, 0x00};
    case TensorType::Q4_1:
      return {20, 4, 16, 2, 0x00};
    case TensorType::Q8_0:
      return {34, 2, 32, 1, 0x80};
    default:
      break;
  }
  fail("no packed layout for ", tensor_type_name(type));
}

}  // namespace

bool packable(TensorType type) {
  return type == TensorType::Q4_0 || type == TensorType::Q4_1 || type == TensorType::Q8_0;
}

PackedShape packed_shape(TensorType type, int64_t rows, int64_t cols) {
  const Layout l = layout_of(type);
  PackedShape s;
  s.quant_bytes = l.qs_bytes * size_t(kPackRows);
  s.scale_bytes = 2 * l.scale_fields * size_t(kPackRows);
  s.group_bytes = size_t(cols / 32) * (s.quant_bytes + s.scale_bytes);
  s.groups = (rows + kPackRows - 1) / kPackRows;
  return s;
}

void pack_groups(TensorType type, const uint8_t* src, size_t row_bytes, int64_t rows, int64_t cols,
                 int64_t g0, int64_t g1, uint8_t* dst) {
  const Layout l = layout_of(type);
  const PackedShape s = packed_shape(type, rows, cols);
  const int64_t nb = cols / 32;
  for (int64_t g = g0; g < g1; ++g) {
    uint8_t* scales = dst + size_t(g) * s.group_bytes;
    uint8_t* quants = scales + size_t(nb) * s.scale_bytes;
    if ((g + 1) * kPackRows > rows) std::memset(scales, 0, s.group_bytes);  // rows past the end
    const uint32_t flip = uint32_t(l.flip) * 0x01010101u;
    const int64_t live = std::min<int64_t>(kPackRows, rows - g * kPackRows);
    const uint8_t* first = src + size_t(g * kPackRows) * row_bytes;
    // Block-major, so each block's 64-byte chunks are filled while in cache.
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* q = quants + size_t(b) * s.quant_bytes;
      uint8_t* sc = scales + size_t(b) * s.scale_bytes;
      for (int64_t i = 0; i < live; ++i) {
        const uint8_t* block = first + size_t(i) * row_bytes + size_t(b) * l.block_bytes;
        // Row i's 4-byte word p goes to word 16p + i of the block.
        for (size_t p = 0; p < l.qs_bytes / 4; ++p) {
          uint32_t w;
          std::memcpy(&w, block + l.head + p * 4, 4);
          w ^= flip;
          std::memcpy(q + p * 64 + size_t(i) * 4, &w, 4);
        }
        for (size_t f = 0; f < l.scale_fields; ++f) {
          std::memcpy(sc + f * 2 * kPackRows + size_t(i) * 2, block + f * 2, 2);
        }
      }
    }
  }
}

}  // namespace memwall::kernels
