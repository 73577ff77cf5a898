#include "quant/rotated_source.h"

#include <regex>

#include "base/error.h"
#include "model/weights.h"

namespace memwall::quant {
namespace {

int64_t metadata_int(const std::vector<std::pair<std::string, gguf::Value>>& md,
                     const std::string& key) {
  for (const auto& [k, v] : md) {
    if (k == key) return v.as_int();
  }
  fail("the model has no ", key, ": --rotate needs a llama-layout model");
}

std::string metadata_string(const std::vector<std::pair<std::string, gguf::Value>>& md,
                            const std::string& key) {
  for (const auto& [k, v] : md) {
    if (k == key && v.type == gguf::ValueType::STRING) return v.s;
  }
  return "";
}

}  // namespace

RotatedSource::RotatedSource(const TensorSource& base, uint64_t seed) : base_(base) {
  const auto& md = base.metadata();
  for (const auto& [k, v] : md) {
    if (k.rfind("memwall.rotation.", 0) == 0) fail(base.path(), " is already rotated");
  }
  const std::string arch = metadata_string(md, "general.architecture");
  if (arch != "llama" && arch != "mistral") {
    fail("--rotate needs a llama-layout model; ", base.path(), " is '", arch, "'");
  }
  const int64_t C = metadata_int(md, arch + ".embedding_length");
  const int64_t F = metadata_int(md, arch + ".feed_forward_length");
  rot_c_.emplace(C, seed);
  rot_f_.emplace(F, seed + 1);  // Forward builds the same two
  metadata_ = md;
  metadata_.emplace_back("memwall.rotation.residual", gguf::Value::boolean(true));
  metadata_.emplace_back("memwall.rotation.ffn_down", gguf::Value::boolean(true));
  metadata_.emplace_back("memwall.rotation.seed", gguf::Value::u64(seed));

  tensors_ = base.tensors();
  plans_.resize(tensors_.size());
  auto index_of = [&](const std::string& name) -> int64_t {
    for (size_t i = 0; i < tensors_.size(); ++i) {
      if (tensors_[i].name == name) return int64_t(i);
    }
    fail(base.path(), ": --rotate needs tensor '", name, "', which the model does not have");
  };
  static const std::regex layer_tensor(R"(blk\.(\d+)\.(\w+)\.weight)");
  bool saw_output_norm = false;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    SourceTensor& t = tensors_[i];
    Plan& p = plans_[i];
    std::smatch m;
    if (t.name == "token_embd.weight" || t.name == "output.weight") {
      p.kind = Kind::kReadsResidual;
    } else if (t.name == "output_norm.weight") {
      t.name = kRotatedOutputNorm;
      saw_output_norm = true;
    } else if (std::regex_match(t.name, m, layer_tensor)) {
      const std::string layer = m[1], what = m[2];
      const std::string prefix = "blk." + layer + ".";
      if (what == "attn_norm" || what == "ffn_norm") {
        p.kind = Kind::kOnes;
      } else if (what == "attn_q" || what == "attn_k" || what == "attn_v") {
        p = {Kind::kReadsResidual, index_of(prefix + "attn_norm.weight")};
      } else if (what == "ffn_gate" || what == "ffn_up") {
        p = {Kind::kReadsResidual, index_of(prefix + "ffn_norm.weight")};
      } else if (what == "attn_output") {
        p.kind = Kind::kWritesResidual;
      } else if (what == "ffn_down") {
        p.kind = Kind::kFfnDown;
      } else {
        fail("--rotate does not know how to rotate tensor '", t.name, "'");
      }
    } else if (t.name != "rope_freqs.weight") {
      fail("--rotate does not know how to rotate tensor '", t.name, "'");
    }
    const int64_t width = p.kind == Kind::kReadsResidual ? C : p.kind == Kind::kOnes ? C : 0;
    if (width && int64_t(t.cols()) != width) {
      fail("tensor '", t.name, "' has rows of ", t.cols(), ", not the model width ", C);
    }
    if ((p.kind == Kind::kWritesResidual || p.kind == Kind::kFfnDown) && int64_t(t.rows()) != C) {
      fail("tensor '", t.name, "' has ", t.rows(), " rows, not the model width ", C);
    }
    if (p.kind == Kind::kFfnDown && int64_t(t.cols()) != F) {
      fail("tensor '", t.name, "' has rows of ", t.cols(), ", not the FFN width ", F);
    }
  }
  if (!saw_output_norm) fail(base.path(), ": --rotate needs tensor 'output_norm.weight'");
}

std::vector<float> RotatedSource::read_all(size_t index) const {
  const SourceTensor& t = tensors_[index];
  std::vector<float> w(t.elements());
  base_.read_rows(index, 0, t.rows(), w.data());
  return w;
}

void RotatedSource::read_rows(size_t index, uint64_t r0, uint64_t r1, float* dst) const {
  const SourceTensor& t = tensors_[index];
  const Plan& p = plans_[index];
  const uint64_t cols = t.cols();
  switch (p.kind) {
    case Kind::kCopy:
      base_.read_rows(index, r0, r1, dst);
      return;
    case Kind::kOnes:
      std::fill(dst, dst + (r1 - r0) * cols, 1.0f);
      return;
    case Kind::kReadsResidual: {
      base_.read_rows(index, r0, r1, dst);
      std::vector<float> g;
      if (p.norm >= 0) g = read_all(size_t(p.norm));
      for (uint64_t r = r0; r < r1; ++r) {
        float* row = dst + (r - r0) * cols;
        for (uint64_t c = 0; c < cols && !g.empty(); ++c) row[c] *= g[c];
        rot_c_->apply_transposed(row);
      }
      return;
    }
    case Kind::kWritesResidual:
    case Kind::kFfnDown: {
      std::lock_guard<std::mutex> lock(mutex_);
      if (cached_index_ != index) {
        std::vector<float> w = read_all(index);
        const uint64_t rows = t.rows();
        if (p.kind == Kind::kFfnDown) {
          for (uint64_t r = 0; r < rows; ++r) rot_f_->apply_transposed(w.data() + r * cols);
        }
        std::vector<float> column(rows);  // R_C^T on every column
        for (uint64_t c = 0; c < cols; ++c) {
          for (uint64_t r = 0; r < rows; ++r) column[r] = w[r * cols + c];
          rot_c_->apply_transposed(column.data());
          for (uint64_t r = 0; r < rows; ++r) w[r * cols + c] = column[r];
        }
        cached_ = std::move(w);
        cached_index_ = index;
      }
      std::copy(cached_.begin() + r0 * cols, cached_.begin() + r1 * cols, dst);
      return;
    }
  }
}

}  // namespace memwall::quant
