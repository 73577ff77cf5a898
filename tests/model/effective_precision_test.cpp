// effective_precision: --precision fast stays fast when some matrix of the
// model has a SIMD kernel for it on the target, and falls back to exact (with
// a note) only when none has.
#include <gtest/gtest.h>

#include "kernels/weight_format.h"
#include "model/weight_units.h"
#include "model/weights.h"

namespace memwall {
namespace {

using kernels::Isa;
using kernels::Precision;

ModelWeights weights_of(TensorType type, int64_t cols) {
  ModelWeights w;
  w.layers.resize(2);
  for (LayerWeights& L : w.layers) {
    for (kernels::MatrixView* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) {
      m->type = type;
      m->codec = &kernels::codec_for(type, "test");
      m->rows = 64;
      m->cols = cols;
    }
  }
  w.output = w.layers[0].wq;
  return w;
}

TEST(EffectivePrecision, FastNeedsOneMatrixWithASimdKernel) {
  std::string note;
  // q4_0's 16-bit kernels: packed on AVX-512 VNNI, rows on AVX2; none scalar.
  const ModelWeights q4 = weights_of(TensorType::Q4_0, 576);
  EXPECT_EQ(effective_precision(Precision::kFast, Isa::kAvx512Vnni, q4, &note), Precision::kFast);
  EXPECT_TRUE(note.empty());
  EXPECT_EQ(effective_precision(Precision::kFast, Isa::kAvx2, q4, &note), Precision::kFast);
  EXPECT_TRUE(note.empty()) << note;
  EXPECT_EQ(effective_precision(Precision::kFast, Isa::kScalar, q4, &note), Precision::kExact);
  EXPECT_NE(note.find("--precision int8"), std::string::npos) << note;
  // w8a8 has AVX2 kernels: fast stays fast there.
  note.clear();
  const ModelWeights w8 = weights_of(TensorType::W8A8, 576);
  EXPECT_EQ(effective_precision(Precision::kFast, Isa::kAvx2, w8, &note), Precision::kFast);
  EXPECT_TRUE(note.empty()) << note;
  // ... but not on a CPU with no SIMD target at all.
  EXPECT_EQ(effective_precision(Precision::kFast, Isa::kScalar, w8), Precision::kExact);
  // Other precisions are never changed.
  EXPECT_EQ(effective_precision(Precision::kInt8, Isa::kScalar, q4), Precision::kInt8);
  EXPECT_EQ(effective_precision(Precision::kExact, Isa::kAvx512Vnni, w8), Precision::kExact);
}

}  // namespace
}  // namespace memwall
