#include "model/weight_units.h"

#include <algorithm>

#include "kernels/gemm.h"
#include "kernels/packed_weights.h"

namespace memwall {
namespace {

constexpr size_t kAlign = 64;

size_t align_up(size_t n) {
  return (n + kAlign - 1) / kAlign * kAlign;
}

UnitMatrix unit_matrix(const kernels::MatrixView& m, int64_t first_row, int64_t rows, bool packed) {
  UnitMatrix u;
  u.source = &m;
  u.first_row = first_row;
  u.rows = rows;
  u.packed = packed;
  u.bytes = packed ? kernels::packed_shape(m.type, rows, m.cols).total_bytes()
                   : size_t(rows) * m.row_bytes;
  return u;
}

void add(WeightUnit& unit, UnitMatrix m) {
  m.offset = unit.bytes;
  unit.bytes = align_up(unit.bytes + m.bytes);
  unit.matrices.push_back(m);
}

}  // namespace

kernels::Precision effective_precision(kernels::Precision requested, kernels::Isa isa,
                                       const ModelWeights& w, std::string* note) {
  if (requested != kernels::Precision::kFast) return requested;
  // kFast is worth running when some matrix has a SIMD kernel for it; the
  // others take the exact path one by one in matmul_group. Without any (a
  // CPU without AVX2) the whole model runs kExact.
  bool any = false;
  const auto check = [&](const kernels::MatrixView& m) {
    if (m.type == TensorType::F32 || m.type == TensorType::F16 || m.type == TensorType::BF16) {
      return;
    }
    const kernels::GemmKernel* k =
        kernels::choose_kernel(m, isa, requested, uses_packed(m, requested, isa));
    any = any || (k != nullptr && k->isa != kernels::Isa::kScalar);
  };
  for (const LayerWeights& L : w.layers) {
    for (const kernels::MatrixView* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down})
      check(*m);
  }
  check(w.output);
  if (any) return requested;
  if (note) {
    *note = "no 16-bit activation kernels for this model's formats on " +
            std::string(kernels::isa_name(isa)) +
            " (they need AVX2): --precision fast runs the exact path "
            "here; --precision int8 is faster at lower quality";
  }
  return kernels::Precision::kExact;
}

kernels::InputForms input_forms(const ModelWeights& w, kernels::Precision precision) {
  kernels::InputForms f;
  if (precision == kernels::Precision::kExact) return f;
  const auto note = [&](const kernels::MatrixView& m) {
    if (m.type == TensorType::W8A8) {
      f.q8_rows = true;
    } else if (m.type != TensorType::F32 && m.type != TensorType::F16 &&
               m.type != TensorType::BF16) {
      f.blocks = true;
    }
  };
  for (const LayerWeights& L : w.layers) {
    for (const kernels::MatrixView* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down})
      note(*m);
  }
  note(w.output);
  return f;
}

bool uses_packed(const kernels::MatrixView& m, kernels::Precision precision, kernels::Isa isa) {
  if (precision == kernels::Precision::kExact) return false;
  if (!kernels::packable(m.type) || m.cols % 32 != 0) return false;
  const kernels::ActivationKind act = precision == kernels::Precision::kFast
                                          ? kernels::ActivationKind::kQ16
                                          : kernels::ActivationKind::kQ8;
  const kernels::GemmKernel* k =
      kernels::find_gemm_kernel(m.type, isa, kernels::WeightLayout::kPacked16, act);
  // The scalar packed kernel exists for tests; it is no faster than the row one.
  return k != nullptr && k->isa != kernels::Isa::kScalar;
}

WeightUnits weight_units(const ModelWeights& w, kernels::Precision precision, kernels::Isa isa,
                         bool packed) {
  WeightUnits out;
  out.n_layer = int64_t(w.layers.size());
  auto pack = [&](const kernels::MatrixView& m) {
    return packed && uses_packed(m, precision, isa);
  };
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& L = w.layers[l];
    WeightUnit u;
    u.layer = int64_t(l);
    for (const kernels::MatrixView* m : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down})
      add(u, unit_matrix(*m, 0, m->rows, pack(*m)));
    out.max_unit_bytes = std::max(out.max_unit_bytes, u.bytes);
    out.units.push_back(std::move(u));
  }
  // The head in parts of whole 16-row groups, each at most a layer's bytes.
  const kernels::MatrixView& head = w.output;
  const bool head_packed = pack(head);
  const size_t group_bytes = unit_matrix(head, 0, 16, head_packed).bytes;
  int64_t part_rows = head.rows;
  if (out.max_unit_bytes > 0) {
    part_rows = std::max<int64_t>(16, int64_t(out.max_unit_bytes / group_bytes) * 16);
  }
  for (int64_t r = 0; r < head.rows; r += part_rows) {
    WeightUnit u;
    add(u, unit_matrix(head, r, std::min(part_rows, head.rows - r), head_packed));
    out.max_unit_bytes = std::max(out.max_unit_bytes, u.bytes);
    out.units.push_back(std::move(u));
  }
  for (const WeightUnit& u : out.units) out.total_bytes += u.bytes;
  return out;
}

}  // namespace memwall
