#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <optional>

#include "base/error.h"
#include "format/gguf_reader.h"
#include "tokenizer/byte_level_bpe.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/sentencepiece_bpe.h"
#include "tokenizer/special_tokens.h"

namespace memwall {

struct Tokenizer::State {
  explicit State(Vocab v) : vocab(std::move(v)), splitter(vocab) {}

  Vocab vocab;
  SpecialTokenSplitter splitter;  // views into vocab: State never moves (held by shared_ptr)
  Kind kind = Kind::kByteLevelBpe;
  std::string model_name, pre;
  std::optional<ByteLevelBpe> bpe;
  std::optional<SentencePieceBpe> spm;
  int32_t bos = -1, eos = -1, unk = -1;
  bool add_bos = false, add_eos = false;
  std::vector<int32_t> eog;
};

namespace {

// Reads an optional token-id key; out-of-range ids are errors rather than
// silent fallbacks, so a broken conversion is caught at load.
int32_t read_token_id(const gguf::File& file, const Vocab& vocab, std::string_view key,
                      int32_t fallback) {
  if (!file.find(key)) return vocab.contains(fallback) ? fallback : -1;
  int64_t id = file.get_int(key);
  if (!vocab.contains(id)) {
    fail(file.path(), ": ", key, " = ", id, " is outside the vocabulary of ", vocab.size(),
         " tokens");
  }
  return static_cast<int32_t>(id);
}

bool renders_empty(TokenType t) {
  return t == TokenType::kControl || t == TokenType::kUnknown || t == TokenType::kUnused ||
         t == TokenType::kUndefined;
}

// Texts that end a turn in common chat formats (the list llama.cpp keeps).
constexpr std::string_view kEndOfGenerationTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>",   "<|endoftext|>",
    "<|eom_id|>", "<EOT>",      "_<EOT>",  "<|end_of_text|>", "<end_of_utterance>",
};

}  // namespace

Tokenizer Tokenizer::from_gguf(const gguf::File& file) {
  if (!file.find("tokenizer.ggml.model")) {
    fail(file.path(), ": no tokenizer (metadata key 'tokenizer.ggml.model' is missing)");
  }
  std::string model = file.get_string("tokenizer.ggml.model");
  if (model != "gpt2" && model != "llama") {
    fail(file.path(), ": tokenizer.ggml.model '", model,
         "' is not supported (supported: gpt2 = byte-level BPE, llama = SentencePiece BPE)");
  }
  auto state = std::make_shared<State>(Vocab::from_gguf(file));
  State& s = *state;
  const Vocab& vocab = s.vocab;
  s.model_name = model;

  if (model == "gpt2") {
    s.kind = Kind::kByteLevelBpe;
    // llama.cpp treats a missing pre-tokenizer as "default".
    s.pre = file.get_string("tokenizer.ggml.pre", "default");
    if (!file.find("tokenizer.ggml.merges")) {
      fail(file.path(), ": byte-level BPE vocabulary without merges ",
           "(metadata key 'tokenizer.ggml.merges' is missing)");
    }
    const gguf::Value* merges = file.find("tokenizer.ggml.merges");
    if (merges->type != gguf::ValueType::ARRAY || merges->element_type != gguf::ValueType::STRING) {
      fail(file.path(), ": metadata key 'tokenizer.ggml.merges' must be an array of strings");
    }
    try {
      s.bpe.emplace(vocab, merges->strings, PreTokenizer::for_name(s.pre));
    } catch (const Error& e) {
      fail(file.path(), ": ", e.what());
    }
    s.bos = read_token_id(file, vocab, "tokenizer.ggml.bos_token_id", -1);
    s.eos = read_token_id(file, vocab, "tokenizer.ggml.eos_token_id", -1);
    s.unk = read_token_id(file, vocab, "tokenizer.ggml.unknown_token_id", -1);
    s.add_bos = file.get_bool("tokenizer.ggml.add_bos_token", false);
    s.add_eos = file.get_bool("tokenizer.ggml.add_eos_token", false);
  } else {
    s.kind = Kind::kSentencePiece;
    // Llama's SentencePiece defaults, as llama.cpp assumes when keys are absent.
    s.bos = read_token_id(file, vocab, "tokenizer.ggml.bos_token_id", 1);
    s.eos = read_token_id(file, vocab, "tokenizer.ggml.eos_token_id", 2);
    s.unk = read_token_id(file, vocab, "tokenizer.ggml.unknown_token_id", 0);
    s.add_bos = file.get_bool("tokenizer.ggml.add_bos_token", true);
    s.add_eos = file.get_bool("tokenizer.ggml.add_eos_token", false);
    s.spm.emplace(vocab, file.get_bool("tokenizer.ggml.add_space_prefix", true), s.unk);
  }
  if (s.add_bos && s.bos < 0) {
    fail(file.path(), ": tokenizer.ggml.add_bos_token is true but there is no bos_token_id");
  }
  if (s.add_eos && s.eos < 0) {
    fail(file.path(), ": tokenizer.ggml.add_eos_token is true but there is no eos_token_id");
  }

  auto add_eog = [&](int32_t id) {
    if (id >= 0 && std::find(s.eog.begin(), s.eog.end(), id) == s.eog.end()) s.eog.push_back(id);
  };
  add_eog(s.eos);
  add_eog(read_token_id(file, vocab, "tokenizer.ggml.eot_token_id", -1));
  add_eog(read_token_id(file, vocab, "tokenizer.ggml.eom_token_id", -1));
  for (std::string_view text : kEndOfGenerationTexts) {
    int32_t id = vocab.find(text);
    if (id >= 0 && vocab.type(id) == TokenType::kControl) add_eog(id);
  }

  return Tokenizer(std::move(state));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special,
                                       bool parse_special) const {
  const State& s = *state_;
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_special && s.add_bos) out.push_back(s.bos);
  std::vector<Fragment> fragments;
  s.splitter.split(text, parse_special, fragments);
  bool at_start = true;  // start of input or right after a special token
  for (const Fragment& f : fragments) {
    if (f.token >= 0) {
      out.push_back(f.token);
      at_start = true;
      continue;
    }
    if (s.bpe) {
      s.bpe->encode(s.vocab, f.text, out);
    } else {
      s.spm->encode(s.vocab, f.text, at_start, out);
    }
    at_start = false;
  }
  if (add_special && s.add_eos) out.push_back(s.eos);
  return out;
}

void Tokenizer::check_id(int32_t id) const {
  if (!state_->vocab.contains(id)) {
    fail("token id ", id, " is outside the vocabulary (0..", state_->vocab.size() - 1, ")");
  }
}

// Decoded on demand (tens of nanoseconds a token) rather than tabled at load:
// a table would cost a 128k vocabulary several milliseconds and megabytes.
std::string Tokenizer::token_bytes(int32_t id, bool render_special) const {
  check_id(id);
  const State& s = *state_;
  TokenType t = s.vocab.type(id);
  if (renders_empty(t)) return render_special ? s.vocab.text(id) : std::string();
  if (t == TokenType::kUserDefined) return s.vocab.text(id);
  if (s.kind == Kind::kByteLevelBpe) return ByteLevelBpe::token_bytes(s.vocab.text(id));
  return SentencePieceBpe::token_bytes(s.vocab, id);
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool render_special) const {
  const State& s = *state_;
  std::string out;
  bool strip_prefix = s.spm && s.spm->add_space_prefix();
  for (int32_t id : ids) {
    std::string piece = token_bytes(id, render_special);
    if (piece.empty()) continue;
    if (strip_prefix && piece[0] == ' ') {
      out.append(piece, 1);
    } else {
      out += piece;
    }
    strip_prefix = false;
  }
  return out;
}

int32_t Tokenizer::bos_id() const {
  return state_->bos;
}
int32_t Tokenizer::eos_id() const {
  return state_->eos;
}
int32_t Tokenizer::unk_id() const {
  return state_->unk;
}
bool Tokenizer::add_bos() const {
  return state_->add_bos;
}
bool Tokenizer::add_eos() const {
  return state_->add_eos;
}

bool Tokenizer::is_end_of_generation(int32_t id) const {
  const auto& eog = state_->eog;
  return std::find(eog.begin(), eog.end(), id) != eog.end();
}

const std::vector<int32_t>& Tokenizer::end_of_generation_ids() const {
  return state_->eog;
}

size_t Tokenizer::vocab_size() const {
  return state_->vocab.size();
}

std::string_view Tokenizer::token_text(int32_t id) const {
  check_id(id);
  return state_->vocab.text(id);
}

TokenType Tokenizer::token_type(int32_t id) const {
  check_id(id);
  return state_->vocab.type(id);
}

int32_t Tokenizer::find_token(std::string_view text) const {
  return state_->vocab.find(text);
}

Tokenizer::Kind Tokenizer::kind() const {
  return state_->kind;
}
const std::string& Tokenizer::model_name() const {
  return state_->model_name;
}
const std::string& Tokenizer::pre_tokenizer() const {
  return state_->pre;
}
bool Tokenizer::add_space_prefix() const {
  return state_->spm && state_->spm->add_space_prefix();
}

}  // namespace memwall
