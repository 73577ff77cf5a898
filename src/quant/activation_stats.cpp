#include "quant/activation_stats.h"

#include <cmath>
#include <cstring>

#include "base/error.h"
#include "format/gguf_reader.h"
#include "format/gguf_writer.h"

namespace memwall::quant {

void ActivationStats::observe(const std::vector<std::string>& readers, const float* x, int64_t T,
                              int64_t cols) {
  if (readers.empty()) return;
  std::shared_ptr<Record>& first = by_name_[readers[0]];
  if (!first) {
    first = std::make_shared<Record>();
    first->sum_sq.assign(size_t(cols), 0.0);
    first->max_abs.assign(size_t(cols), 0.0f);
  }
  if (int64_t(first->sum_sq.size()) != cols) {
    fail("calibration: '", readers[0], "' read ", cols, " columns, earlier ", first->sum_sq.size());
  }
  for (size_t i = 1; i < readers.size(); ++i) by_name_[readers[i]] = first;
  Record& r = *first;
  for (int64_t t = 0; t < T; ++t) {
    const float* row = x + t * cols;
    for (int64_t c = 0; c < cols; ++c) {
      r.sum_sq[size_t(c)] += double(row[c]) * row[c];
      r.max_abs[size_t(c)] = std::max(r.max_abs[size_t(c)], std::fabs(row[c]));
    }
  }
  r.count += T;
  r.dirty = true;
}

const std::vector<float>* ActivationStats::importance(const std::string& name) const {
  auto it = by_name_.find(name);
  if (it == by_name_.end() || it->second->count == 0) return nullptr;
  Record& r = *it->second;
  if (r.dirty) {
    r.mean_sq.resize(r.sum_sq.size());
    for (size_t c = 0; c < r.sum_sq.size(); ++c)
      r.mean_sq[c] = float(r.sum_sq[c] / double(r.count));
    r.dirty = false;
  }
  return &r.mean_sq;
}

const std::vector<float>* ActivationStats::max_abs(const std::string& name) const {
  auto it = by_name_.find(name);
  if (it == by_name_.end() || it->second->count == 0 || it->second->max_abs.empty()) {
    return nullptr;
  }
  return &it->second->max_abs;
}

int64_t ActivationStats::tokens(const std::string& name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? 0 : it->second->count;
}

}  // namespace memwall::quant

namespace memwall::quant {
namespace {
constexpr std::string_view kSum2 = ".in_sum2", kCounts = ".counts";

std::vector<uint8_t> f32_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> out(v.size() * sizeof(float));
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}
}  // namespace

void ActivationStats::save(const std::string& path) const {
  gguf::Writer w;
  w.set("general.type", gguf::Value::string("imatrix"));
  for (const auto& [name, r] : by_name_) {
    std::vector<float> sum2(r->sum_sq.begin(), r->sum_sq.end());
    w.add_tensor(name + std::string(kSum2), TensorType::F32, {sum2.size()}, f32_bytes(sum2));
    w.add_tensor(name + std::string(kCounts), TensorType::F32, {1}, f32_bytes({float(r->count)}));
  }
  w.write(path);
}

ActivationStats ActivationStats::load(const std::string& path) {
  const gguf::File f = gguf::File::open(path);
  ActivationStats stats;
  for (const gguf::TensorInfo& t : f.tensors()) {
    const std::string_view n = t.name;
    if (n.size() <= kSum2.size() || n.substr(n.size() - kSum2.size()) != kSum2) continue;
    const std::string name(n.substr(0, n.size() - kSum2.size()));
    const gguf::TensorInfo* c = f.find_tensor(name + std::string(kCounts));
    if (c == nullptr) fail(path, ": '", t.name, "' has no '", name, kCounts, "'");
    if (t.type != TensorType::F32 || t.n_dims != 1 || c->type != TensorType::F32 ||
        c->n_elements != 1) {
      fail(path, ": '", name, "' is not an f32 vector with an f32 count");
    }
    float count = 0;
    std::memcpy(&count, c->data, sizeof count);
    if (!(count >= 1 && count < 1e15f)) fail(path, ": '", name, "' has count ", count);
    auto r = std::make_shared<Record>();
    r->sum_sq.resize(t.ne[0]);
    // max_abs stays empty: imatrix files do not carry it.
    for (uint64_t i = 0; i < t.ne[0]; ++i) {
      float v = 0;
      std::memcpy(&v, t.data + i * sizeof(float), sizeof v);
      if (!(v >= 0 && std::isfinite(v))) fail(path, ": '", name, "' column ", i, " is ", v);
      r->sum_sq[i] = v;
    }
    r->count = int64_t(count);
    stats.by_name_[name] = r;
  }
  if (stats.by_name_.empty()) fail(path, ": no importance entries (<name>.in_sum2) in the file");
  return stats;
}

}  // namespace memwall::quant
