// memwall tokenize: the token ids the model's own tokenizer gives a text.
//
//   memwall tokenize -m MODEL [--no-bos] [--file F | TEXT]   ids on one line
//   memwall tokenize --jsonl F                               one line of ids per JSON-string line
//   memwall tokenize --show TEXT                             id<TAB>piece per token
//
// Control tokens written in the text (<|im_start|>) are parsed as tokens,
// as `run` and `chat` do; --no-parse-special spells them out instead.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "base/error.h"
#include "commands.h"
#include "common.h"
#include "format/gguf_reader.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/utf8.h"

namespace memwall::tools {
namespace {

struct TokenizeOptions {
  std::string model;
  std::string text;
  std::string file;
  std::string jsonl;
  bool no_bos = false;
  bool no_parse_special = false;
  bool show = false;
  bool stats = false;
  // Set from the parsed options: an empty TEXT ("") is still an input.
  const CLI::Option* text_given = nullptr;
};

std::string read_all(const std::string& path) {
  if (path == "-") {
    return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot open ", path);
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

void append_ids(std::string& out, const std::vector<int32_t>& ids) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ' ';
    out += std::to_string(ids[i]);
  }
  out += '\n';
}

// A token piece made readable on one line: escapes for control characters
// and for bytes that are not (yet) a whole UTF-8 character.
std::string escape_piece(std::string_view bytes) {
  std::string out;
  char hex[8];
  for (size_t i = 0; i < bytes.size();) {
    utf8::Scan s = utf8::scan(bytes.substr(i));
    auto c = static_cast<unsigned char>(bytes[i]);
    if (s.kind != utf8::Scan::kValid || c < 0x20 || c == 0x7F || c == '\\') {
      switch (c) {
        case '\n':
          out += "\\n";
          break;
        case '\t':
          out += "\\t";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\\':
          out += "\\\\";
          break;
        default:
          std::snprintf(hex, sizeof hex, "\\x%02X", c);
          out += hex;
      }
      i += 1;
      continue;
    }
    out.append(bytes.substr(i, s.length));
    i += s.length;
  }
  return out;
}

int run_tokenize(const TokenizeOptions& opt) {
  int sources = (opt.text_given->count() > 0) + !opt.file.empty() + !opt.jsonl.empty();
  if (sources != 1) fail("give exactly one input: TEXT, --file F or --jsonl F");
  gguf::File file = gguf::File::open(resolve_model_path(opt.model));
  const Tokenizer tok = Tokenizer::from_gguf(file);
  const bool add_special = !opt.no_bos;
  const bool parse_special = !opt.no_parse_special;

  std::vector<std::string> inputs;
  if (!opt.jsonl.empty()) {
    std::istringstream lines(read_all(opt.jsonl));
    std::string line;
    for (size_t n = 1; std::getline(lines, line); ++n) {
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(line);
      } catch (const nlohmann::json::exception& e) {
        fail(opt.jsonl, " line ", n, ": not JSON (", e.what(), ")");
      }
      if (!j.is_string()) fail(opt.jsonl, " line ", n, ": expected a JSON string");
      inputs.push_back(j.get<std::string>());
    }
  } else {
    inputs.push_back(opt.file.empty() ? opt.text : read_all(opt.file));
  }

  size_t total_bytes = 0, total_tokens = 0;
  double seconds = 0, cpu_seconds = 0;
  std::string out;
  for (const std::string& text : inputs) {
    auto t0 = std::chrono::steady_clock::now();
    double c0 = thread_cpu_seconds();
    std::vector<int32_t> ids = tok.encode(text, add_special, parse_special);
    cpu_seconds += thread_cpu_seconds() - c0;
    seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    total_bytes += text.size();
    total_tokens += ids.size();
    if (opt.show) {
      for (int32_t id : ids) {
        out += std::to_string(id) + '\t' + escape_piece(tok.token_bytes(id, true)) + '\n';
      }
    } else {
      append_ids(out, ids);
    }
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  if (opt.stats) {
    // CPU time too: on a busy machine the wall clock also counts time spent waiting.
    std::fprintf(stderr,
                 "%zu bytes -> %zu tokens (%.2f bytes/token); encode %.3f s wall (%.2f MB/s), "
                 "%.3f s cpu (%.2f MB/s)\n",
                 total_bytes, total_tokens, total_tokens ? double(total_bytes) / total_tokens : 0.0,
                 seconds, seconds > 0 ? total_bytes / seconds / 1e6 : 0.0, cpu_seconds,
                 cpu_seconds > 0 ? total_bytes / cpu_seconds / 1e6 : 0.0);
  }
  return 0;
}

const CommandRegistration kTokenize{
    "tokenize", "Print the token ids of a text under a model's own tokenizer", 30,
    [](CLI::App& sub) -> CommandAction {
      auto opt = std::make_shared<TokenizeOptions>();
      opt->text_given = sub.add_option("text", opt->text, "Text to tokenize");
      sub.add_option("-m,--model", opt->model, "GGUF file (default: the default model)");
      sub.add_option("--file", opt->file, "Tokenize the contents of this file ('-' = stdin)");
      sub.add_option("--jsonl", opt->jsonl,
                     "Batch mode: each line is a JSON string; print one line of ids per line");
      sub.add_flag("--no-bos", opt->no_bos, "Do not add BOS/EOS even if the model asks for them");
      sub.add_flag("--no-parse-special", opt->no_parse_special,
                   "Spell out control-token text (<|im_start|>) instead of parsing it");
      sub.add_flag("--show", opt->show, "Print id<TAB>piece per token instead of the ids");
      sub.add_flag("--stats", opt->stats, "Print bytes, tokens and encode speed to stderr");
      return [opt] { return run_tokenize(*opt); };
    }};

}  // namespace
}  // namespace memwall::tools
