// The file `memwall perplexity --save-logits` writes and `--kl-base` reads:
// a base model's next-token distributions at every scored position, so
// another model (a quantization, another precision) can be measured against
// it by KL-divergence without the base at hand. Little-endian:
//
//   header
//     char[8]  magic "MWLPROB1"
//     u32      n_vocab V, ctx, n_chunks, first (= ctx / 2: the first scored position)
//     u32      add_bos (0 or 1); i32 bos id (-1: none)
//     u64      vocabulary hash (vocab_hash(): every token's stored text)
//     u32      N, then N bytes: the base model's path (for messages)
//     i32      tokens[n_chunks * ctx]: each window's tokens, before BOS replaces the first
//   per chunk, one row per scored position p in [first, ctx - 1):
//     i32      argmax of the base's logits
//     f32      nll: -log p(token at p + 1), exact (the base's perplexity)
//     f32      step
//     u16      code[V]: the distance below the row's largest log-prob in steps
//              of `step`, over min(the row's spread, 32 nats) in 65534 steps;
//              65535: further below (p taken as 0). A reader takes
//              log p_i = -step * code_i - log sum_j exp(-step * code_j), which
//              renormalizes away the rounding's first-order error.
//   then the chunk's u64 checksum (of its rows).
//
// Size: 12 + 2V bytes per scored token (98,316 B, 96 KiB, for V = 49152),
// plus the header. Codes to 32 nats below the top: on the default model the
// self-KL of a stored distribution is ~4e-9 and int8 vs exact KL is within
// 1e-5 relative of float64 numpy (16 nats, llama.cpp's range, drops real mass).
//
// Written to FILE.tmp.PID and renamed at commit(), so a failed run leaves
// nothing half-written.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace memwall {
class Tokenizer;
}

namespace memwall::tools {

struct LogProbHeader {
  uint32_t n_vocab = 0, ctx = 0, n_chunks = 0, first = 0;
  bool add_bos = false;
  int32_t bos = -1;
  uint64_t vocab_hash = 0;
  std::string model;
  std::vector<int32_t> tokens;  // n_chunks * ctx

  uint32_t scored_per_chunk() const { return ctx - 1 - first; }
};

inline constexpr double kLogProbRange = 32.0;  // nats below a row's top that are coded
inline constexpr uint16_t kBelowRange = 65535;
size_t logprob_row_bytes(int64_t n_vocab);
// Bytes of the whole file for this header.
uint64_t logprob_file_bytes(const LogProbHeader& h);
// FNV-1a over every token's stored text: equal vocabularies, equal hashes.
uint64_t vocab_hash(const Tokenizer& tokenizer);

// One row from a model's logits (V values). lse: their log-sum-exp; argmax:
// the first largest; target: the next token.
void encode_logprob_row(const float* logits, int64_t V, double lse, int32_t argmax, int32_t target,
                        uint8_t* row);

// KL(base || this) for one row, with this model's log-probs logits - lse.
// Returns NaN when the row cannot be a stored distribution (its step or nll
// is not a finite number in range, its argmax is outside the vocabulary, or
// every code is out of range).
struct BaseRow {
  int32_t argmax = 0;
  double nll = 0;
};
double kl_from_logprob_row(const uint8_t* row, const float* logits, int64_t V, double lse,
                           BaseRow* base);

// Streams rows to FILE.tmp.PID; commit() renames it to FILE. Destroyed
// without commit(), it removes the temporary file.
class LogProbWriter {
 public:
  LogProbWriter(const std::string& path, const LogProbHeader& header);
  ~LogProbWriter();
  LogProbWriter(const LogProbWriter&) = delete;
  LogProbWriter& operator=(const LogProbWriter&) = delete;

  void write_rows(const uint8_t* rows, int64_t n);
  void end_chunk();  // writes the chunk's checksum
  void commit();

 private:
  std::string path_, tmp_;
  FILE* f_ = nullptr;
  size_t row_bytes_;
  uint64_t checksum_;
};

// Validates the header and the file's size on open (throws Error naming the
// file and what is wrong); then hands out rows chunk by chunk, checking each
// chunk's checksum at end_chunk().
class LogProbReader {
 public:
  explicit LogProbReader(const std::string& path);
  ~LogProbReader();
  LogProbReader(const LogProbReader&) = delete;
  LogProbReader& operator=(const LogProbReader&) = delete;

  const LogProbHeader& header() const { return header_; }
  void read_rows(uint8_t* rows, int64_t n);
  void end_chunk(int64_t chunk);

 private:
  std::string path_;
  FILE* f_ = nullptr;
  LogProbHeader header_;
  size_t row_bytes_ = 0;
  uint64_t checksum_;
};

}  // namespace memwall::tools
