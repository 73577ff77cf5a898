#include "quant/smoothed_source.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"

namespace memwall::quant {
namespace {

const gguf::Value* find(const std::vector<std::pair<std::string, gguf::Value>>& md,
                        const std::string& key) {
  for (const auto& [k, v] : md) {
    if (k == key) return &v;
  }
  return nullptr;
}

double range_ratio(std::vector<float> m) {
  if (m.empty()) return 0;
  const float top = *std::max_element(m.begin(), m.end());
  std::nth_element(m.begin(), m.begin() + m.size() / 2, m.end());
  const float median = m[m.size() / 2];
  return median > 0 ? double(top) / median : 0;
}

}  // namespace

SmoothedSource::SmoothedSource(const TensorSource& base, const ActivationStats& stats, float alpha)
    : base_(base), stats_(stats), metadata_(base.metadata()) {
  if (!(alpha > 0 && alpha <= 1)) fail("--smooth must be in (0, 1], not ", alpha);
  for (const auto& [k, v] : metadata_) {
    if (k.rfind("memwall.rotation.", 0) == 0) {
      fail(base.path(), " is rotated; --smooth and --rotate are alternatives, not a pair");
    }
  }
  const gguf::Value* arch_value = find(metadata_, "general.architecture");
  const std::string arch =
      arch_value && arch_value->type == gguf::ValueType::STRING ? arch_value->s : "";
  if (arch != "llama" && arch != "mistral") {
    fail("--smooth needs a llama-layout model; ", base.path(), " is '", arch, "'");
  }
  const gguf::Value* heads = find(metadata_, arch + ".attention.head_count");
  const gguf::Value* heads_kv = find(metadata_, arch + ".attention.head_count_kv");
  const gguf::Value* layers = find(metadata_, arch + ".block_count");
  if (!heads || !layers) fail(base.path(), ": --smooth needs the head and block counts");
  const int64_t n_head = heads->as_int(), n_layer = layers->as_int();
  const int64_t n_head_kv = heads_kv ? heads_kv->as_int() : n_head;
  if (n_head <= 0 || n_head_kv <= 0 || n_head % n_head_kv != 0 || n_layer <= 0) {
    fail(base.path(), ": head counts ", n_head, "/", n_head_kv, " do not group");
  }
  metadata_.emplace_back("memwall.smoothquant.alpha", gguf::Value::f32(alpha));

  const std::vector<SourceTensor>& ts = base.tensors();
  plans_.resize(ts.size());
  auto index_of = [&](const std::string& name) -> int64_t {
    for (size_t i = 0; i < ts.size(); ++i) {
      if (ts[i].name == name) return int64_t(i);
    }
    return -1;
  };
  auto require = [&](const std::string& name) {
    const int64_t i = index_of(name);
    if (i < 0) fail(base.path(), ": --smooth needs tensor '", name, "'");
    return size_t(i);
  };
  // Largest |w| per column over the given matrices, read one row block at a time.
  auto column_max = [&](const std::vector<size_t>& members) {
    std::vector<float> m(ts[members[0]].cols(), 0.0f), rows;
    for (size_t i : members) {
      const SourceTensor& t = ts[i];
      if (t.cols() != m.size())
        fail("tensor '", t.name, "' has rows of ", t.cols(), ", not ", m.size());
      constexpr uint64_t kBlock = 64;
      for (uint64_t r0 = 0; r0 < t.rows(); r0 += kBlock) {
        const uint64_t r1 = std::min(t.rows(), r0 + kBlock);
        rows.resize((r1 - r0) * t.cols());
        base.read_rows(i, r0, r1, rows.data());
        for (uint64_t r = 0; r < r1 - r0; ++r) {
          for (uint64_t c = 0; c < t.cols(); ++c)
            m[c] = std::max(m[c], std::fabs(rows[r * t.cols() + c]));
        }
      }
    }
    return m;
  };
  auto x_max = [&](const std::string& name, size_t cols) {
    const std::vector<float>* m = stats.max_abs(name);
    if (m == nullptr) {
      fail("--smooth: the calibration run has no activations for '", name,
           "' (--smooth needs --calib; imatrix files carry no maxima)");
    }
    if (m->size() != cols) fail("--smooth: '", name, "' saw ", m->size(), " columns, not ", cols);
    return *m;
  };
  auto smoothing = [alpha](float x, float w) {
    if (!(x > 0) || !(w > 0)) return 1.0f;  // a dead channel: leave it be
    const float s = std::pow(x, alpha) / std::pow(w, 1.0f - alpha);
    return std::clamp(s, 1e-5f, 1e5f);
  };
  double before = 0, after = 0;
  auto note_ratio = [&](const std::vector<float>& xm, const std::vector<float>& s) {
    std::vector<float> smoothed(xm.size());
    for (size_t j = 0; j < xm.size(); ++j) smoothed[j] = xm[j] / s[j];
    before = std::max(before, range_ratio(xm));
    after = std::max(after, range_ratio(smoothed));
  };
  auto set_importance = [&](const std::string& name, const std::vector<float>& s) {
    const std::vector<float>* imp = stats.importance(name);
    if (imp == nullptr) return;
    std::vector<float>& out = importance_[name];
    out.resize(imp->size());
    for (size_t j = 0; j < out.size(); ++j) out[j] = (*imp)[j] / (s[j] * s[j]);
  };

  // A group of matrices reading one norm's output: s into their columns, 1/s into the norm.
  auto norm_group = [&](const std::string& key, const std::vector<std::string>& readers,
                        const std::string& norm) {
    std::vector<size_t> members;
    for (const std::string& r : readers) members.push_back(require(r));
    const size_t cols = ts[members[0]].cols();
    const std::vector<float> xm = x_max(readers[0], cols), wm = column_max(members);
    std::vector<float>& s = scales_[key];
    s.resize(cols);
    for (size_t j = 0; j < cols; ++j) s[j] = smoothing(xm[j], wm[j]);
    note_ratio(xm, s);
    for (size_t i : members) {
      plans_[i].col_scale = &s;
      set_importance(ts[i].name, s);
    }
    const size_t n = require(norm);
    if (ts[n].dims.size() != 1 || ts[n].cols() != cols)
      fail("tensor '", norm, "' is not a vector of ", cols);
    plans_[n].divide = &s;
  };

  for (int64_t l = 0; l < n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    norm_group(p + "attn", {p + "attn_q.weight", p + "attn_k.weight", p + "attn_v.weight"},
               p + "attn_norm.weight");
    norm_group(p + "ffn", {p + "ffn_gate.weight", p + "ffn_up.weight"}, p + "ffn_norm.weight");

    // attn_output reads the heads' outputs, which V's rows produce: one s
    // per V row (KV head g, dim d), shared by the query heads of group g.
    const size_t o = require(p + "attn_output.weight"), v = require(p + "attn_v.weight");
    const int64_t Q = int64_t(ts[o].cols()), KV = int64_t(ts[v].rows());
    if (Q % n_head != 0 || KV != Q / n_head * n_head_kv) {
      fail("tensors '", ts[o].name, "' and '", ts[v].name, "' do not match ", n_head, "/",
           n_head_kv, " heads");
    }
    const int64_t D = Q / n_head, group = n_head / n_head_kv;
    const std::vector<float> xo = x_max(ts[o].name, size_t(Q)), wo = column_max({o});
    std::vector<float> xg(size_t(KV), 0.0f), wg(size_t(KV), 0.0f);
    for (int64_t h = 0; h < n_head; ++h) {
      for (int64_t d = 0; d < D; ++d) {
        const size_t kv = size_t(h / group * D + d), q = size_t(h * D + d);
        xg[kv] = std::max(xg[kv], xo[q]);
        wg[kv] = std::max(wg[kv], wo[q]);
      }
    }
    std::vector<float>& s_kv = scales_[p + "attn_output.kv"];
    std::vector<float>& s_o = scales_[p + "attn_output"];
    s_kv.resize(size_t(KV));
    s_o.resize(size_t(Q));
    for (int64_t kv = 0; kv < KV; ++kv)
      s_kv[size_t(kv)] = smoothing(xg[size_t(kv)], wg[size_t(kv)]);
    for (int64_t q = 0; q < Q; ++q) s_o[size_t(q)] = s_kv[size_t(q / D / group * D + q % D)];
    note_ratio(xo, s_o);
    plans_[o].col_scale = &s_o;
    set_importance(ts[o].name, s_o);
    plans_[v].row_scale = &s_kv;

    // ffn_down reads silu(gate) * up: 1/s goes into up's rows.
    const size_t down = require(p + "ffn_down.weight"), up = require(p + "ffn_up.weight");
    const size_t F = ts[down].cols();
    if (ts[up].rows() != F)
      fail("tensor '", ts[up].name, "' has ", ts[up].rows(), " rows, not ", F);
    const std::vector<float> xd = x_max(ts[down].name, F), wd = column_max({down});
    std::vector<float>& s_d = scales_[p + "ffn_down"];
    s_d.resize(F);
    for (size_t j = 0; j < F; ++j) s_d[j] = smoothing(xd[j], wd[j]);
    note_ratio(xd, s_d);
    plans_[down].col_scale = &s_d;
    set_importance(ts[down].name, s_d);
    plans_[up].row_scale = &s_d;
  }
  // Only an untied output head: a tied one is also the embedding table.
  if (index_of("output.weight") >= 0) norm_group("output", {"output.weight"}, "output_norm.weight");
  ratio_before_ = before;
  ratio_after_ = after;
}

const std::vector<float>* SmoothedSource::importance(const std::string& tensor) const {
  auto it = importance_.find(tensor);
  if (it != importance_.end()) return &it->second;
  return stats_.importance(tensor);  // not smoothed: the input is as calibrated
}

void SmoothedSource::read_rows(size_t index, uint64_t r0, uint64_t r1, float* dst) const {
  base_.read_rows(index, r0, r1, dst);
  const Plan& p = plans_[index];
  const uint64_t cols = base_.tensors()[index].cols();
  for (uint64_t r = r0; r < r1; ++r) {
    float* row = dst + (r - r0) * cols;
    if (p.divide) {
      for (uint64_t c = 0; c < cols; ++c) row[c] /= (*p.divide)[c];
    }
    if (p.col_scale) {
      for (uint64_t c = 0; c < cols; ++c) row[c] *= (*p.col_scale)[c];
    }
    if (p.row_scale) {
      const float inv = 1.0f / (*p.row_scale)[r];
      for (uint64_t c = 0; c < cols; ++c) row[c] *= inv;
    }
  }
}

}  // namespace memwall::quant
