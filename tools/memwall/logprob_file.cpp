#include "logprob_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>

#include "base/error.h"
#include "base/splitmix64.h"
#include "tokenizer/tokenizer.h"

namespace memwall::tools {

static_assert(std::endian::native == std::endian::little, "the file is written as in memory");

namespace {

constexpr char kMagic[8] = {'M', 'W', 'L', 'P', 'R', 'O', 'B', '1'};
constexpr size_t kFixedHeader = 8 + 4 * 4 + 4 + 4 + 8 + 4;  // up to the model name
constexpr uint32_t kMaxName = 4096;
constexpr uint16_t kTopCode = 65534;  // codes 0..65534 cover the range
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Rows are hashed one at a time (8-byte words through splitmix64), then the
// row hashes chained: the same value however rows are grouped in reads.
uint64_t hash_row(const uint8_t* p, size_t n) {
  uint64_t h = n;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    h = SplitMix64{h ^ w}.next();
  }
  uint64_t tail = 0;
  std::memcpy(&tail, p + i, n - i);
  return SplitMix64{h ^ tail}.next();
}

uint64_t chain(uint64_t checksum, uint64_t row_hash) {
  return SplitMix64{checksum ^ row_hash}.next();
}

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof v);
}

std::string errno_text() {
  return std::strerror(errno);
}

}  // namespace

size_t logprob_row_bytes(int64_t n_vocab) {
  return 12 + 2 * size_t(n_vocab);
}

uint64_t logprob_file_bytes(const LogProbHeader& h) {
  const uint64_t header = kFixedHeader + h.model.size() + 4ull * h.n_chunks * h.ctx;
  const uint64_t chunk = uint64_t(h.scored_per_chunk()) * logprob_row_bytes(h.n_vocab) + 8;
  return header + chunk * h.n_chunks;
}

uint64_t vocab_hash(const Tokenizer& tokenizer) {
  uint64_t h = 0xcbf29ce484222325ull;  // FNV-1a 64
  auto add = [&h](unsigned char c) { h = (h ^ c) * 0x100000001b3ull; };
  for (size_t id = 0; id < tokenizer.vocab_size(); ++id) {
    for (char c : tokenizer.token_text(int32_t(id))) add(static_cast<unsigned char>(c));
    add(0);
  }
  return h;
}

void encode_logprob_row(const float* logits, int64_t V, double lse, int32_t argmax, int32_t target,
                        uint8_t* row) {
  const float top = logits[argmax];
  float low = top;
  for (int64_t i = 0; i < V; ++i) low = std::min(low, logits[i]);
  const double range = std::min(double(top) - double(low), kLogProbRange);
  const float step = float(range / kTopCode);
  const float nll = float(lse - double(logits[target]));
  std::memcpy(row, &argmax, 4);
  std::memcpy(row + 4, &nll, 4);
  std::memcpy(row + 8, &step, 4);
  uint16_t* code = reinterpret_cast<uint16_t*>(row + 12);  // 12: 2-byte aligned rows
  if (!(step > 0)) {                                       // every logit equal: one code for all
    std::fill(code, code + V, uint16_t(0));
    return;
  }
  const double inv = 1.0 / double(step);
  for (int64_t i = 0; i < V; ++i) {
    const double c = std::nearbyint((double(top) - double(logits[i])) * inv);
    code[i] = c <= kTopCode ? uint16_t(c) : kBelowRange;
  }
}

double kl_from_logprob_row(const uint8_t* row, const float* logits, int64_t V, double lse,
                           BaseRow* base) {
  float nll = 0, step = 0;
  std::memcpy(&base->argmax, row, 4);
  std::memcpy(&nll, row + 4, 4);
  std::memcpy(&step, row + 8, 4);
  base->nll = nll;
  const bool step_ok = std::isfinite(step) && step >= 0 && step <= kLogProbRange / kTopCode * 1.001;
  if (!step_ok || !std::isfinite(nll) || base->argmax < 0 || base->argmax >= V) return kNaN;
  const uint16_t* code = reinterpret_cast<const uint16_t*>(row + 12);
  // With e_i = exp(-step * code_i) and Z = sum e_i: log p_i = log e_i - log Z,
  // so KL = sum p_i (log p_i - log q_i) = (sum e_i (log e_i - log q_i)) / Z - log Z.
  double z = 0, s = 0;
  for (int64_t i = 0; i < V; ++i) {
    if (code[i] == kBelowRange) continue;
    const double a = -double(step) * code[i];
    const double e = std::exp(a);
    z += e;
    s += e * (a - (double(logits[i]) - lse));
  }
  if (!(z > 0)) return kNaN;
  return s / z - std::log(z);
}

LogProbWriter::LogProbWriter(const std::string& path, const LogProbHeader& h)
    : path_(path),
      tmp_(path + ".tmp." + std::to_string(getpid())),
      row_bytes_(logprob_row_bytes(h.n_vocab)),
      checksum_(0) {
  f_ = std::fopen(tmp_.c_str(), "wb");
  if (!f_) fail("--save-logits: cannot create '", tmp_, "': ", errno_text());
  std::string out(kMagic, 8);
  put(out, h.n_vocab);
  put(out, h.ctx);
  put(out, h.n_chunks);
  put(out, h.first);
  put(out, uint32_t(h.add_bos));
  put(out, h.bos);
  put(out, h.vocab_hash);
  put(out, uint32_t(std::min<size_t>(h.model.size(), kMaxName)));
  out.append(h.model, 0, kMaxName);
  out.append(reinterpret_cast<const char*>(h.tokens.data()), h.tokens.size() * 4);
  if (std::fwrite(out.data(), 1, out.size(), f_) != out.size()) {
    fail("--save-logits: cannot write '", tmp_, "': ", errno_text());
  }
}

LogProbWriter::~LogProbWriter() {
  if (!f_) return;
  std::fclose(f_);
  std::remove(tmp_.c_str());
}

void LogProbWriter::write_rows(const uint8_t* rows, int64_t n) {
  for (int64_t r = 0; r < n; ++r)
    checksum_ = chain(checksum_, hash_row(rows + r * row_bytes_, row_bytes_));
  const size_t bytes = size_t(n) * row_bytes_;
  if (std::fwrite(rows, 1, bytes, f_) != bytes) {
    fail("--save-logits: cannot write '", tmp_, "': ", errno_text());
  }
}

void LogProbWriter::end_chunk() {
  if (std::fwrite(&checksum_, 8, 1, f_) != 1) {
    fail("--save-logits: cannot write '", tmp_, "': ", errno_text());
  }
  checksum_ = 0;
}

void LogProbWriter::commit() {
  // Flushed and synced before the rename, so the name never points at a
  // partial file even after a crash.
  const bool ok = std::fflush(f_) == 0 && fsync(fileno(f_)) == 0;
  const int closed = std::fclose(f_);
  f_ = nullptr;
  if (!ok || closed != 0 || std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const std::string why = errno_text();
    std::remove(tmp_.c_str());
    fail("--save-logits: cannot write '", path_, "': ", why);
  }
}

LogProbReader::LogProbReader(const std::string& path) : path_(path), checksum_(0) {
  f_ = std::fopen(path.c_str(), "rb");
  if (!f_) fail("--kl-base: cannot open '", path, "': ", errno_text());
  auto bad = [&](const auto&... why) {
    fail("--kl-base: '", path, "' is not a log-prob file from memwall perplexity --save-logits (",
         why..., ")");
  };
  struct stat st {};
  if (fstat(fileno(f_), &st) != 0 || !S_ISREG(st.st_mode)) bad("not a regular file");
  const uint64_t size = uint64_t(st.st_size);
  char magic[8];
  if (std::fread(magic, 1, 8, f_) != 8 || std::memcmp(magic, kMagic, 8) != 0) {
    bad("wrong magic: expected MWLPROB1");
  }
  uint32_t add_bos = 0, name_len = 0;
  bool ok =
      std::fread(&header_.n_vocab, 4, 1, f_) == 1 && std::fread(&header_.ctx, 4, 1, f_) == 1 &&
      std::fread(&header_.n_chunks, 4, 1, f_) == 1 && std::fread(&header_.first, 4, 1, f_) == 1 &&
      std::fread(&add_bos, 4, 1, f_) == 1 && std::fread(&header_.bos, 4, 1, f_) == 1 &&
      std::fread(&header_.vocab_hash, 8, 1, f_) == 1 && std::fread(&name_len, 4, 1, f_) == 1;
  if (!ok) bad("the header is cut short");
  LogProbHeader& h = header_;
  if (h.n_vocab < 1 || h.n_vocab > (1u << 24)) bad("vocabulary of ", h.n_vocab, " tokens");
  if (h.ctx < 4 || h.ctx % 2 || h.ctx > (1u << 24) || h.first != h.ctx / 2) {
    bad("ctx ", h.ctx, ", first scored position ", h.first);
  }
  if (h.n_chunks < 1 || uint64_t(h.n_chunks) * h.ctx > (1ull << 31)) bad(h.n_chunks, " chunks");
  if (add_bos > 1 || h.bos < -1 || h.bos >= int32_t(h.n_vocab) || (add_bos == 1) != (h.bos >= 0)) {
    bad("BOS flag ", add_bos, ", BOS id ", h.bos);
  }
  if (name_len > kMaxName) bad("model name of ", name_len, " bytes");
  h.add_bos = add_bos == 1;
  // Sized from the header before anything large is read: a truncated or
  // padded file is caught here, not after minutes of evaluation.
  h.model.assign(name_len, '\0');
  const uint64_t expected = logprob_file_bytes(h);
  if (size != expected) {
    fail("--kl-base: '", path, "' has ", size, " bytes but its header (", h.n_chunks,
         " chunks of ctx ", h.ctx, ", vocabulary ", h.n_vocab, ") needs ", expected,
         size < expected ? ": the file is truncated" : ": the file has trailing bytes");
  }
  h.tokens.resize(size_t(h.n_chunks) * h.ctx);
  if ((name_len && std::fread(h.model.data(), 1, name_len, f_) != name_len) ||
      std::fread(h.tokens.data(), 4, h.tokens.size(), f_) != h.tokens.size()) {
    bad("cannot read the header: ", errno_text());
  }
  for (int32_t t : h.tokens) {
    if (t < 0 || t >= int32_t(h.n_vocab)) bad("token id ", t, " outside the vocabulary");
  }
  row_bytes_ = logprob_row_bytes(h.n_vocab);
}

LogProbReader::~LogProbReader() {
  if (f_) std::fclose(f_);
}

void LogProbReader::read_rows(uint8_t* rows, int64_t n) {
  const size_t bytes = size_t(n) * row_bytes_;
  if (std::fread(rows, 1, bytes, f_) != bytes) {
    fail("--kl-base: cannot read '", path_, "' (it changed while being read?)");
  }
  for (int64_t r = 0; r < n; ++r)
    checksum_ = chain(checksum_, hash_row(rows + r * row_bytes_, row_bytes_));
}

void LogProbReader::end_chunk(int64_t chunk) {
  uint64_t stored = 0;
  if (std::fread(&stored, 8, 1, f_) != 1) {
    fail("--kl-base: cannot read '", path_, "' (it changed while being read?)");
  }
  if (stored != checksum_) {
    fail("--kl-base: chunk ", chunk + 1, " of '", path_,
         "' is corrupt (its checksum does not match its rows)");
  }
  checksum_ = 0;
}

}  // namespace memwall::tools
