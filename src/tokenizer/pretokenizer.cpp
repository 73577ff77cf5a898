#include "tokenizer/pretokenizer.h"

#include <array>

#include "base/error.h"
#include "tokenizer/pcre2_regex.h"

namespace memwall {
namespace {

// GPT-2's word regex. HF's ByteLevel adds a final `|\s+`; llama.cpp leaves it
// out. Either way the same pieces come out: the only text `\s+(?!\S)` cannot
// take is a single white-space character before a non-space, and that becomes
// a one-character gap piece here exactly as `\s+` would match it. We keep the
// `|\s+` so the pattern reads as HF's and a match never needs the gap rule.
constexpr const char* kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Llama 3: contractions in either case, letters with one leading
// non-letter/digit, numbers in groups of up to three, newlines kept together.
constexpr const char* kLlama3 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Qwen 2: as Llama 3 but every digit on its own.
constexpr const char* kQwen2 =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct Preset {
  std::vector<std::string_view> names;
  std::vector<const char*> regexes;
  bool ignore_merges = false;
};

// The groups follow llama.cpp's llama-vocab.cpp (name -> pre type -> regexes).
const std::vector<Preset>& presets() {
  static const std::vector<Preset> p = {
      // llama.cpp's fallback for BPE vocabularies whose pre-tokenizer is "default".
      {{"default"}, {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"}},
      {{"gpt-2", "phi-2", "jina-es", "jina-de", "jina-v2-es", "jina-v2-de", "jina-v1-en",
        "jina-v2-code", "roberta-bpe", "gigachat", "mpt", "olmo", "jais", "exaone4", "trillion",
        "granite-docling", "a.x-4.0", "mellum"},
       {kGpt2}},
      // Digits one by one first, then GPT-2's regex on each piece (HF: Digits + ByteLevel).
      {{"starcoder", "smollm", "refact", "command-r", "codeshell", "exaone", "minerva-7b"},
       {R"(\p{N})", kGpt2}},
      {{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2",
        "dbrx", "smaug-bpe"},
       {kLlama3},
       true},
      {{"chatglm-bpe", "glm4"}, {kLlama3}},
      {{"qwen2", "deepseek-r1-qwen", "stablelm2", "megrez", "kormo", "hunyuan", "grok-2"},
       {kQwen2}},
      {{"falcon"}, {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, "[0-9][0-9][0-9]"}},
      {{"deepseek-coder"},
       {"[\r\n]", R"(\s?\p{L}+)", R"(\s?\p{P}+)",
        "[\\x{4E00}-\\x{9FA5}\\x{0800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+", R"(\p{N})"}},
  };
  return p;
}

}  // namespace

PreTokenizer PreTokenizer::from_regexes(const std::vector<std::string>& patterns,
                                        bool ignore_merges) {
  PreTokenizer p;
  for (const auto& pattern : patterns) p.regexes_.push_back(std::make_shared<Pcre2Regex>(pattern));
  p.ignore_merges_ = ignore_merges;
  return p;
}

PreTokenizer PreTokenizer::for_name(std::string_view pre) {
  for (const Preset& preset : presets()) {
    for (std::string_view name : preset.names) {
      if (name != pre) continue;
      std::vector<std::string> patterns(preset.regexes.begin(), preset.regexes.end());
      return from_regexes(patterns, preset.ignore_merges);
    }
  }
  fail("tokenizer.ggml.pre '", pre,
       "' is not a pre-tokenizer memwall knows (known: ", known_names(), ")");
}

std::string PreTokenizer::known_names() {
  std::string out;
  for (const Preset& preset : presets()) {
    for (std::string_view name : preset.names) {
      if (!out.empty()) out += ", ";
      out += name;
    }
  }
  return out;
}

void PreTokenizer::split(std::string_view text, std::vector<std::string_view>& out) const {
  if (text.empty()) return;
  std::vector<std::string_view> current{text}, next;
  for (const auto& regex : regexes_) {
    next.clear();
    Pcre2Regex::MatchData md(*regex);
    for (std::string_view piece : current) {
      size_t done = 0;
      regex->for_each_match(piece, md, [&](size_t begin, size_t end) {
        if (begin > done) next.push_back(piece.substr(done, begin - done));
        next.push_back(piece.substr(begin, end - begin));
        done = end;
      });
      if (done < piece.size()) next.push_back(piece.substr(done));
    }
    current.swap(next);
  }
  out.insert(out.end(), current.begin(), current.end());
}

}  // namespace memwall
