#include "model/weight_packing.h"

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "kernels/gemm.h"
#include "kernels/packed_weights.h"

namespace memwall {
namespace {

std::vector<kernels::MatrixView*> all_matrices(ModelWeights& w) {
  std::vector<kernels::MatrixView*> m = {&w.token_embd, &w.output};
  for (LayerWeights& l : w.layers) {
    for (kernels::MatrixView* v : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
      m.push_back(v);
    }
  }
  return m;
}

bool has_packed_kernel(const kernels::MatrixView& m, kernels::Isa isa) {
  if (!kernels::packable(m.type) || m.cols % 32 != 0) return false;
  const kernels::GemmKernel* k =
      kernels::find_gemm_kernel(m.type, isa, kernels::WeightLayout::kPacked16);
  // The scalar packed kernel exists for tests; it is no faster than the row one.
  return k != nullptr && k->isa != kernels::Isa::kScalar;
}

}  // namespace

PackStats pack_weights(Model& model, ThreadPool& pool, kernels::Isa isa) {
  PackStats stats;
  if (model.packed.size() != 0) return model.pack_stats;
  const auto t0 = std::chrono::steady_clock::now();
  // Distinct matrices by data (a tied output head is the embedding).
  struct Job {
    const uint8_t* data;
    std::vector<kernels::MatrixView*> views;
    kernels::PackedShape shape;
    size_t offset;
  };
  std::vector<Job> jobs;
  size_t total = 0;
  for (kernels::MatrixView* m : all_matrices(model.weights)) {
    if (!has_packed_kernel(*m, isa)) continue;
    Job* job = nullptr;
    for (Job& j : jobs) {
      if (j.data == m->data) job = &j;
    }
    if (job == nullptr) {
      const kernels::PackedShape shape = kernels::packed_shape(m->type, m->rows, m->cols);
      jobs.push_back({m->data, {}, shape, total});
      total += shape.total_bytes();  // a multiple of 64: groups are whole 64-byte chunks
      job = &jobs.back();
    }
    job->views.push_back(m);
  }
  if (jobs.empty()) return stats;
  model.packed = AlignedBuffer(total);
  for (const Job& j : jobs) {
    const kernels::MatrixView& m = *j.views.front();
    uint8_t* dst = model.packed.data() + j.offset;
    pool.parallel_for(j.shape.groups, [&](int64_t g0, int64_t g1, int) {
      kernels::pack_groups(m.type, m.data, m.row_bytes, m.rows, m.cols, g0, g1, dst);
    });
    for (kernels::MatrixView* v : j.views) {
      v->packed = dst;
      v->packed_group_bytes = j.shape.group_bytes;
    }
    model.file.release_pages(m.data, m.bytes());
  }
  stats.matrices = int(jobs.size());
  stats.bytes = total;
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  model.pack_stats = stats;
  return stats;
}

PackStats prepare_weights(Model& model, ThreadPool& pool, kernels::Precision precision) {
  if (precision == kernels::Precision::kExact) return {};
  const kernels::Isa isa = kernels::active_isa();
  if (precision == kernels::Precision::kFast) {
    const kernels::GemmKernel* k =
        kernels::find_gemm_kernel(TensorType::Q4_0, isa, kernels::WeightLayout::kPacked16,
                                  kernels::ActivationKind::kQ16);
    if (k == nullptr || k->isa == kernels::Isa::kScalar) {
      std::fprintf(stderr,
                   "note: no 16-bit activation kernels for %s (they need AVX-512 VNNI): "
                   "--precision fast runs the exact path here; --precision int8 is faster "
                   "at lower quality\n",
                   std::string(kernels::isa_name(isa)).c_str());
      return {};
    }
  }
  return pack_weights(model, pool, isa);
}

}  // namespace memwall
