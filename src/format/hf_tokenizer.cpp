#include "format/hf_tokenizer.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "base/error.h"
#include "base/mapped_file.h"

namespace memwall::hf {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// llama.cpp's token types (gguf.TokenType).
constexpr int32_t kNormal = 1, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6;
// A vocabulary larger than this is a corrupt file, not a model.
constexpr uint64_t kMaxVocab = 1u << 24;

// The regex of Llama 3's tokenizer.json Split pre-tokenizer, as HF writes it.
constexpr const char* kLlama3Regex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

std::string short_dump(const json& j) {
  std::string s = j.dump();
  return s.size() > 200 ? s.substr(0, 200) + "..." : s;
}

const json* member(const json& j, const char* key) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

std::optional<std::string> string_member(const json& j, const char* key) {
  const json* v = member(j, key);
  if (v && v->is_string()) return v->get<std::string>();
  return std::nullopt;
}

// tokenizer_config's "<typ>_token" is a string or {"content": ...}.
std::optional<std::string> token_content(const json& config, const std::string& key) {
  const json* v = member(config, key.c_str());
  if (!v) return std::nullopt;
  if (v->is_string()) return v->get<std::string>();
  if (auto c = string_member(*v, "content")) return c;
  return std::nullopt;
}

bool looks_special(const std::string& t) {
  auto starts = [&](std::string_view p) { return t.rfind(p, 0) == 0; };
  auto ends = [&](std::string_view s) {
    return t.size() >= s.size() && t.compare(t.size() - s.size(), s.size(), s) == 0;
  };
  return t == "<pad>" || t == "<mask>" || t == "<2mass>" || t == "[@BOS@]" ||
         (starts("<|") && ends("|>")) || (starts("<\xef\xbd\x9c") && ends("\xef\xbd\x9c>")) ||
         (starts("<unused") && ends(">"));
}

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) {
    s.replace(p, from.size(), to);
  }
  return s;
}

struct AddedToken {
  uint64_t id = 0;
  std::string content;
  bool special = false;
};

std::vector<AddedToken> read_added_tokens(const json& tok, const std::string& path) {
  std::vector<AddedToken> out;
  const json* list = member(tok, "added_tokens");
  if (!list) return out;
  if (!list->is_array()) fail(path, ": 'added_tokens' is not a list");
  for (const json& a : *list) {
    const json* id = member(a, "id");
    auto content = string_member(a, "content");
    if (!id || !id->is_number_unsigned() || !content) {
      fail(path, ": added token ", short_dump(a), " has no id or content");
    }
    const json* special = member(a, "special");
    out.push_back(
        {id->get<uint64_t>(), *content, special && special->is_boolean() && special->get<bool>()});
  }
  return out;
}

// gguf-py's SpecialVocab: special token ids, add_*_token flags and the chat
// template, from tokenizer.json's post-processor, tokenizer_config.json and
// config.json, in that order of precedence for ids (first set wins).
struct SpecialVocab {
  std::vector<std::pair<std::string, int64_t>> ids;  // in the order they were found
  std::vector<std::pair<std::string, bool>> add;
  std::vector<std::pair<std::string, std::string>> templates;  // name ("" = default), text
  std::vector<std::string> template_names;

  void set_add(const std::string& typ, bool v) {
    for (auto& [k, x] : add) {
      if (k == typ) {
        x = v;
        return;
      }
    }
    add.emplace_back(typ, v);
  }
  void set_id(const std::string& typ, int64_t id, uint64_t n_vocab,
              std::vector<std::string>& notes) {
    for (const auto& [k, x] : ids) {
      if (k == typ) return;
    }
    if (id < 0 || uint64_t(id) >= n_vocab) {
      notes.push_back(typ + " token id " + std::to_string(id) + " is outside the vocabulary (" +
                      std::to_string(n_vocab) + " tokens); not written");
      return;
    }
    ids.emplace_back(typ, id);
  }
};

std::optional<std::string> special_token_id(const json& entry) {
  const json* s = member(entry, "SpecialToken");
  return s ? string_member(*s, "id") : std::nullopt;
}

std::optional<std::string> sequence_id(const json& entry) {
  const json* s = member(entry, "Sequence");
  return s ? string_member(*s, "id") : std::nullopt;
}

void read_special_vocab(const std::string& dir, const json* tok,
                        const std::vector<AddedToken>& added, const json& config, uint64_t n_vocab,
                        SpecialVocab& sv, std::vector<std::string>& notes) {
  std::vector<std::string> types = {"bos", "eos", "unk", "sep", "pad", "cls", "mask"};
  const fs::path tc_path = fs::path(dir) / "tokenizer_config.json";
  std::optional<json> tc;
  if (fs::is_regular_file(tc_path)) tc = read_json(tc_path.string());
  if (tc && !tc->is_object()) fail(tc_path.string(), ": not a JSON object");
  // The configured contents by type; the post-processor may rewrite them.
  std::map<std::string, std::string> content;
  if (tc) {
    for (const auto& t : types) {
      if (auto c = token_content(*tc, t + "_token")) content[t] = *c;
    }
  }
  auto get = [&](const std::string& t) -> std::optional<std::string> {
    auto it = content.find(t);
    if (it == content.end() || it->second.empty()) return std::nullopt;
    return it->second;
  };
  if (tok) {
    if (!get("bos") && get("cls") && tc) content["bos"] = *get("cls");
    if (!get("eos") && get("sep") && tc) content["eos"] = *get("sep");
    const json* pp = member(*tok, "post_processor");
    std::vector<json> processors;
    if (pp) {
      const json* list = member(*pp, "processors");
      if (list && list->is_array()) {
        processors.assign(list->begin(), list->end());
      } else {
        processors.push_back(*pp);
      }
    }
    for (const json& p : processors) {
      const auto type = string_member(p, "type");
      if (type == "RobertaProcessing") {
        sv.set_add("bos", true);
        sv.set_add("eos", true);
        sv.set_add("sep", true);
        continue;
      }
      if (type != "TemplateProcessing") continue;
      const json* single = member(p, "single");
      const json* pair = member(p, "pair");
      std::optional<std::string> first, last;
      if (single && single->is_array() && single->size() > 1) {
        if ((first = special_token_id(single->front()))) {
          if (!tc) content["bos"] = *first;
          sv.set_add("bos", first == get("bos") || first == get("cls"));
        }
        if ((last = special_token_id(single->back()))) {
          if (!tc) {
            content["eos"] = *last;
          } else if (last != get("eos")) {
            // The template ends with another token: it becomes EOS and the
            // configured EOS is kept as end-of-turn (as the converter does).
            const std::string fallback =
                std::find(types.begin(), types.end(), "eot") == types.end() ? "eot" : "eom";
            types.push_back(fallback);
            if (get("eos")) content[fallback] = *get("eos");
            content["eos"] = *last;
          }
          sv.set_add("eos", last == get("eos"));
        }
      }
      if (pair && pair->is_array() && !pair->empty()) {
        std::vector<json> rest(pair->begin(), pair->end());
        const bool drop_first = first && special_token_id(rest.front()) == first;
        const bool drop_last = last && special_token_id(rest.back()) == last;
        if (drop_last) rest.pop_back();
        if (drop_first && !rest.empty()) rest.erase(rest.begin());
        if (rest.size() > 2 && sequence_id(rest.front()) == "A" &&
            sequence_id(rest.back()) == "B") {
          std::vector<json> mid(rest.begin() + 1, rest.end() - 1);
          bool add_sep = false;
          auto is_sep = [&](const std::optional<std::string>& e) {
            return e && (e == get("sep") || e == get("eos"));
          };
          if (is_sep(special_token_id(mid[0])) && !last) add_sep = true;
          if (mid.size() == 2 && is_sep(special_token_id(mid[1]))) add_sep = true;
          sv.set_add("sep", add_sep);
          if (add_sep && !get("sep") && tc && get("eos")) content["sep"] = *get("eos");
        }
      }
    }
  }
  if (tc) {
    // Chat template: tokenizer_config.json, else chat_template.jinja / .json.
    std::optional<json> tmpl;
    if (const json* t = member(*tc, "chat_template")) tmpl = *t;
    const fs::path jinja = fs::path(dir) / "chat_template.jinja";
    const fs::path tjson = fs::path(dir) / "chat_template.json";
    if (!tmpl && fs::is_regular_file(jinja)) {
      std::ifstream in(jinja, std::ios::binary);
      std::stringstream ss;
      ss << in.rdbuf();
      tmpl = ss.str();
    } else if (!tmpl && fs::is_regular_file(tjson)) {
      json j = read_json(tjson.string());
      if (const json* t = member(j, "chat_template")) tmpl = *t;
    }
    if (tmpl && tmpl->is_string()) {
      sv.templates.emplace_back("", tmpl->get<std::string>());
    } else if (tmpl && tmpl->is_array()) {
      for (const json& choice : *tmpl) {
        std::string name = string_member(choice, "name").value_or("");
        auto text = string_member(choice, "template");
        for (char& c : name) {
          if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
        }
        if (name.empty() || !text) continue;
        if (name == "default") {
          sv.templates.emplace_back("", *text);
        } else {
          sv.templates.emplace_back(name, *text);
          sv.template_names.push_back(name);
        }
      }
    } else if (tmpl) {
      notes.push_back("chat_template is neither a string nor a list; not written");
    }
    for (const std::string& t : types) {
      if (const json* a = member(*tc, ("add_" + t + "_token").c_str()); a && a->is_boolean()) {
        sv.set_add(t, a->get<bool>());
      }
      auto c = get(t);
      if (!c) continue;
      for (const AddedToken& a : added) {
        if (a.content == *c) {
          sv.set_id(t, int64_t(a.id), n_vocab, notes);
          break;
        }
      }
    }
  }
  for (const std::string& t : types) {
    const json* id = member(config, (t + "_token_id").c_str());
    if (!id) {
      if (const json* text = member(config, "text_config"))
        id = member(*text, (t + "_token_id").c_str());
    }
    if (id && id->is_number_integer()) sv.set_id(t, id->get<int64_t>(), n_vocab, notes);
  }
}

void write_special_vocab(const SpecialVocab& sv, Metadata& out) {
  static const std::map<std::string, std::string> kIdKeys = {
      {"bos", "bos_token_id"},       {"eos", "eos_token_id"},     {"unk", "unknown_token_id"},
      {"sep", "seperator_token_id"}, {"pad", "padding_token_id"}, {"mask", "mask_token_id"},
      {"eot", "eot_token_id"},       {"eom", "eom_token_id"}};
  for (const auto& [typ, id] : sv.ids) {
    auto key = kIdKeys.find(typ);
    if (key != kIdKeys.end())
      out.set("tokenizer.ggml." + key->second, gguf::Value::u32(uint32_t(id)));
  }
  for (const auto& [typ, v] : sv.add) {
    // gguf-py has writers for these three only; the others are dropped.
    if (typ == "bos" || typ == "eos" || typ == "sep") {
      out.set("tokenizer.ggml.add_" + typ + "_token", gguf::Value::boolean(v));
    }
  }
  for (const auto& [name, text] : sv.templates) {
    out.set(name.empty() ? "tokenizer.chat_template" : "tokenizer.chat_template." + name,
            gguf::Value::string(text));
  }
  if (!sv.template_names.empty()) {
    out.set("tokenizer.chat_templates", gguf::Value::string_array(sv.template_names));
  }
}

uint64_t config_vocab_size(const json& config, const std::string& dir) {
  const json* v = member(config, "vocab_size");
  if (!v) return 0;
  if (!v->is_number_unsigned() || v->get<uint64_t>() == 0 || v->get<uint64_t>() > kMaxVocab) {
    fail(dir, "/config.json: vocab_size ", short_dump(*v), " is not a vocabulary size");
  }
  return v->get<uint64_t>();
}

// The name llama.cpp gives the pre-tokenizer (tokenizer.ggml.pre). The
// converter hashes a test string's tokens; reading the tokenizer.json's own
// description gives the same name for the families memwall runs.
std::string detect_pre(const json& tok, const std::string& path) {
  if (const json* norm = member(tok, "normalizer")) {
    fail(path, ": a byte-level BPE tokenizer with normalizer ", short_dump(*norm),
         " is not supported (memwall's byte-level BPE runs without one)");
  }
  const json* pre = member(tok, "pre_tokenizer");
  if (!pre) fail(path, ": byte-level BPE without a pre_tokenizer is not supported");
  std::vector<json> seq;
  const json* list = member(*pre, "pretokenizers");
  if (string_member(*pre, "type") == "Sequence" && list && list->is_array()) {
    seq.assign(list->begin(), list->end());
  } else {
    seq.push_back(*pre);
  }
  auto byte_level = [](const json& p, bool use_regex) {
    const json* ur = member(p, "use_regex");
    const json* aps = member(p, "add_prefix_space");
    return string_member(p, "type") == "ByteLevel" &&
           (ur ? ur->is_boolean() && ur->get<bool>() : true) == use_regex &&
           !(aps && aps->is_boolean() && aps->get<bool>());
  };
  if (seq.size() == 1 && byte_level(seq[0], true)) return "gpt-2";
  if (seq.size() == 2 && string_member(seq[0], "type") == "Digits" && byte_level(seq[1], true)) {
    const json* ind = member(seq[0], "individual_digits");
    if (ind && ind->is_boolean() && ind->get<bool>()) return "smollm";
  }
  if (seq.size() == 2 && string_member(seq[0], "type") == "Split" && byte_level(seq[1], false)) {
    const json* pattern = member(seq[0], "pattern");
    if (pattern && string_member(*pattern, "Regex") == kLlama3Regex &&
        string_member(seq[0], "behavior") == "Isolated") {
      return "llama-bpe";
    }
  }
  fail(path, ": pre-tokenizer ", short_dump(*pre),
       " is not one memwall recognizes (it reads ByteLevel = gpt-2, Digits + ByteLevel = smollm, "
       "Llama 3's Split + ByteLevel = llama-bpe)");
}

std::vector<std::string> read_merges(const json& tok, const std::string& dir,
                                     const std::string& path) {
  std::vector<std::string> merges;
  const json* model = member(tok, "model");
  const json* list = model ? member(*model, "merges") : nullptr;
  if (list && list->is_array()) {
    for (const json& m : *list) {
      if (m.is_string()) {
        merges.push_back(m.get<std::string>());
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        // The list form may hold spaces; llama.cpp's merges are "a b", so a
        // space inside a part is written as U+0120 ('Ġ'), as gguf-py does.
        merges.push_back(replace_all(m[0].get<std::string>(), " ", "\xc4\xa0") + " " +
                         replace_all(m[1].get<std::string>(), " ", "\xc4\xa0"));
      } else {
        fail(path, ": merge ", short_dump(m), " is neither \"a b\" nor [\"a\", \"b\"]");
      }
    }
  }
  if (!merges.empty()) return merges;
  // gguf-py falls back to merges.txt ("#version" line first, then "a b" lines).
  std::ifstream in(fs::path(dir) / "merges.txt");
  std::string line;
  bool first = true;
  while (std::getline(in, line)) {
    if (first && line.rfind("#", 0) == 0) {
      first = false;
      continue;
    }
    first = false;
    std::istringstream parts(line);
    std::string a, b, extra;
    if (!(parts >> a)) continue;
    if (!(parts >> b) || (parts >> extra)) continue;  // malformed; gguf-py ignores it too
    merges.push_back(a + " " + b);
  }
  if (merges.empty()) fail(path, ": the BPE tokenizer has no merges (and there is no merges.txt)");
  return merges;
}

// A byte-level BPE vocabulary: tokens by id up to config's vocab_size, as
// convert_hf_to_gguf's get_vocab_base writes them.
void gpt2_vocab(const std::string& dir, const json& tok, const json& config, Metadata& out,
                std::vector<std::string>& notes) {
  const std::string path = dir + "/tokenizer.json";
  const std::string pre = detect_pre(tok, path);
  const json* vocab_ptr = member(*member(tok, "model"), "vocab");
  if (!vocab_ptr || !vocab_ptr->is_object())
    fail(path, ": model.vocab is not an object of token -> id");
  const json& vocab = *vocab_ptr;
  const std::vector<AddedToken> added = read_added_tokens(tok, path);
  std::map<uint64_t, std::string> by_id;
  for (const auto& [text, id] : vocab.items()) {
    if (!id.is_number_unsigned() || id.get<uint64_t>() >= kMaxVocab) {
      fail(path, ": token '", text, "' has id ", short_dump(id), ", not a vocabulary index");
    }
    if (!by_id.emplace(id.get<uint64_t>(), text).second) {
      fail(path, ": id ", id.get<uint64_t>(), " is given to two tokens");
    }
  }
  std::map<uint64_t, const AddedToken*> added_by_id;
  std::set<std::string> added_content;
  for (const AddedToken& a : added) {
    if (a.id >= kMaxVocab) fail(path, ": added token '", a.content, "' has id ", a.id);
    by_id[a.id] = a.content;  // an added token overrides the model's entry for its id
    added_by_id[a.id] = &a;
    added_content.insert(a.content);
  }
  uint64_t n = config_vocab_size(config, dir);
  if (n == 0) n = by_id.empty() ? 0 : by_id.rbegin()->first + 1;
  if (!by_id.empty() && by_id.rbegin()->first >= n) {
    fail(path, ": token '", by_id.rbegin()->second, "' has id ", by_id.rbegin()->first,
         ", outside config.json's vocab_size ", n,
         " (the embedding has no row for it; remove it or fix vocab_size)");
  }
  std::vector<std::string> tokens(n);
  std::vector<int32_t> types(n);
  for (uint64_t i = 0; i < n; ++i) {
    auto it = by_id.find(i);
    if (it == by_id.end()) {
      tokens[i] = "[PAD" + std::to_string(i) + "]";
      types[i] = kUnused;
      continue;
    }
    std::string text = it->second;
    if (added_content.count(text)) {
      auto a = added_by_id.find(i);
      const bool special = a != added_by_id.end() && a->second->special;
      if (special || looks_special(text)) {
        types[i] = kControl;
      } else {
        text = replace_all(text, "\xe2\x96\x81", " ");  // pre-normalized user-defined spaces
        types[i] = kUserDefined;
      }
    } else {
      types[i] = kNormal;
    }
    tokens[i] = std::move(text);
  }
  std::vector<std::string> merges = read_merges(tok, dir, path);
  out.set("tokenizer.ggml.model", gguf::Value::string("gpt2"));
  out.set("tokenizer.ggml.pre", gguf::Value::string(pre));
  out.set("tokenizer.ggml.tokens", gguf::Value::string_array(std::move(tokens)));
  out.set("tokenizer.ggml.token_type", gguf::Value::i32_array(types));
  out.set("tokenizer.ggml.merges", gguf::Value::string_array(std::move(merges)));
  SpecialVocab sv;
  read_special_vocab(dir, &tok, added, config, n, sv, notes);
  write_special_vocab(sv, out);
}

bool is_byte_token(const std::string& t) {
  return t.size() == 6 && t.compare(0, 3, "<0x") == 0 && std::isxdigit(uint8_t(t[3])) &&
         std::isxdigit(uint8_t(t[4])) && t[5] == '>';
}

// A SentencePiece-style BPE in tokenizer.json (byte_fallback), as gguf-py's
// LlamaHfVocab reads it: every score -1000, byte tokens typed BYTE, the
// configured special tokens CONTROL, added tokens past the base vocabulary
// appended in id order.
void llama_hf_vocab(const std::string& dir, const json& tok, const json& config, Metadata& out,
                    std::vector<std::string>& notes) {
  const std::string path = dir + "/tokenizer.json";
  const json* vocab_ptr = member(*member(tok, "model"), "vocab");
  if (!vocab_ptr || !vocab_ptr->is_object())
    fail(path, ": model.vocab is not an object of token -> id");
  const json& vocab = *vocab_ptr;
  const uint64_t base = vocab.size();
  std::vector<std::string> tokens(base);
  std::vector<bool> seen(base);
  for (const auto& [text, id] : vocab.items()) {
    if (!id.is_number_unsigned() || id.get<uint64_t>() >= base || seen[id.get<uint64_t>()]) {
      fail(path, ": token '", text, "' has id ", short_dump(id),
           "; the ids of model.vocab must be 0..", base - 1, " once each");
    }
    seen[id.get<uint64_t>()] = true;
    tokens[id.get<uint64_t>()] = text;
  }
  const std::vector<AddedToken> added = read_added_tokens(tok, path);
  // Special ids: the tokenizer's special tokens (bos/eos/unk/sep/pad/cls/mask
  // and additional_special_tokens from tokenizer_config.json).
  std::set<std::string> specials;
  const fs::path tc_path = fs::path(dir) / "tokenizer_config.json";
  if (fs::is_regular_file(tc_path)) {
    json tc = read_json(tc_path.string());
    for (const char* t : {"bos", "eos", "unk", "sep", "pad", "cls", "mask"}) {
      if (auto c = token_content(tc, std::string(t) + "_token")) specials.insert(*c);
    }
    if (const json* extra = member(tc, "additional_special_tokens"); extra && extra->is_array()) {
      for (const json& e : *extra) {
        if (e.is_string()) specials.insert(e.get<std::string>());
        if (auto c = string_member(e, "content")) specials.insert(*c);
      }
    }
  }
  std::map<uint64_t, std::string> extra;  // added tokens past the base vocabulary
  std::map<std::string, uint64_t> id_of;
  for (uint64_t i = 0; i < base; ++i) id_of.emplace(tokens[i], i);
  for (const AddedToken& a : added) {
    if (a.id >= base) extra[a.id] = a.content;
    id_of[a.content] = a.id;
    if (a.id < base) tokens[a.id] = a.content;
  }
  std::set<uint64_t> special_ids;
  for (const std::string& s : specials) {
    if (auto it = id_of.find(s); it != id_of.end()) special_ids.insert(it->second);
  }
  std::vector<int32_t> types(base);
  for (uint64_t i = 0; i < base; ++i) {
    types[i] = is_byte_token(tokens[i]) ? kByte : special_ids.count(i) ? kControl : kNormal;
  }
  uint64_t next = base;
  for (const auto& [id, text] : extra) {
    if (id != next) {
      fail(path, ": added token '", text, "' has id ", id, " but the next free id is ", next,
           " (gaps in the vocabulary are not supported)");
    }
    ++next;
    tokens.push_back(text);
    types.push_back(special_ids.count(id) ? kControl : kUserDefined);
  }
  const uint64_t n = tokens.size();
  if (n > kMaxVocab) fail(path, ": ", n, " tokens is not a vocabulary");
  if (uint64_t cv = config_vocab_size(config, dir); cv && cv != n) {
    notes.push_back("tokenizer.json has " + std::to_string(n) +
                    " tokens, config.json's vocab_size is " + std::to_string(cv));
  }
  out.set("tokenizer.ggml.model", gguf::Value::string("llama"));
  out.set("tokenizer.ggml.pre", gguf::Value::string("default"));
  out.set("tokenizer.ggml.tokens", gguf::Value::string_array(std::move(tokens)));
  out.set("tokenizer.ggml.scores", gguf::Value::f32_array(std::vector<float>(n, -1000.0f)));
  out.set("tokenizer.ggml.token_type", gguf::Value::i32_array(types));
  SpecialVocab sv;
  read_special_vocab(dir, &tok, added, config, n, sv, notes);
  write_special_vocab(sv, out);
}

// tokenizer.model, as convert_hf_to_gguf's _create_vocab_sentencepiece reads it.
void sentencepiece_vocab(const std::string& dir, const json& config, Metadata& out,
                         std::vector<std::string>& notes) {
  const std::string path = dir + "/tokenizer.model";
  MappedFile file(path);
  std::vector<SentencePiece> pieces = read_sentencepiece_model(file.data(), file.size(), path);
  uint64_t n = config_vocab_size(config, dir);
  if (n == 0) n = pieces.size();
  std::vector<std::string> tokens(n);
  std::vector<float> scores(n, -10000.0f);
  std::vector<int32_t> types(n, kUnused);
  for (uint64_t i = 0; i < n; ++i) tokens[i] = "[PAD" + std::to_string(i) + "]";
  if (pieces.size() > n) {
    notes.push_back("tokenizer.model has " + std::to_string(pieces.size()) +
                    " pieces; those past config.json's vocab_size " + std::to_string(n) +
                    " are dropped");
  }
  for (uint64_t i = 0; i < std::min<uint64_t>(n, pieces.size()); ++i) {
    const SentencePiece& p = pieces[i];
    tokens[i] = p.piece;
    scores[i] = p.score;
    // sentencepiece's USER_DEFINED pieces count as normal here, as in the converter.
    types[i] = p.type == 2 || p.type == 3 || p.type == 5 || p.type == 6 ? p.type : kNormal;
  }
  const fs::path added_path = fs::path(dir) / "added_tokens.json";
  if (fs::is_regular_file(added_path)) {
    json added = read_json(added_path.string());
    if (!added.is_object()) fail(added_path.string(), ": not an object of token -> id");
    for (const auto& [text, id] : added.items()) {
      if (!id.is_number_unsigned() || id.get<uint64_t>() >= n) {
        notes.push_back("added_tokens.json: '" + text + "' is outside the vocabulary; skipped");
        continue;
      }
      tokens[id.get<uint64_t>()] = text;
      scores[id.get<uint64_t>()] = -1000.0f;
      types[id.get<uint64_t>()] = kUserDefined;
    }
  }
  const fs::path tc_path = fs::path(dir) / "tokenizer_config.json";
  if (fs::is_regular_file(tc_path)) {
    json tc = read_json(tc_path.string());
    if (const json* dec = member(tc, "added_tokens_decoder"); dec && dec->is_object()) {
      for (const auto& [key, data] : dec->items()) {
        auto content = string_member(data, "content");
        uint64_t id = 0;
        try {
          size_t used = 0;
          id = std::stoull(key, &used);
          if (used != key.size()) throw std::invalid_argument(key);
        } catch (const std::exception&) {
          fail(tc_path.string(), ": added_tokens_decoder key '", key, "' is not a token id");
        }
        if (!content) fail(tc_path.string(), ": added token ", id, " has no content");
        if (id >= n) {
          notes.push_back("tokenizer_config.json: token " + std::to_string(id) +
                          " is outside the vocabulary; skipped");
          continue;
        }
        const json* special = member(data, "special");
        if ((special && special->is_boolean() && special->get<bool>()) || looks_special(*content)) {
          types[id] = kControl;
          tokens[id] = *content;
        } else {
          types[id] = kUserDefined;
          tokens[id] = replace_all(*content, "\xe2\x96\x81", " ");
        }
        scores[id] = -1000.0f;
      }
    }
  }
  out.set("tokenizer.ggml.model", gguf::Value::string("llama"));
  out.set("tokenizer.ggml.pre", gguf::Value::string("default"));
  out.set("tokenizer.ggml.tokens", gguf::Value::string_array(std::move(tokens)));
  out.set("tokenizer.ggml.scores", gguf::Value::f32_array(scores));
  out.set("tokenizer.ggml.token_type", gguf::Value::i32_array(types));
  // The special vocabulary still reads tokenizer.json when there is one.
  const fs::path tok_path = fs::path(dir) / "tokenizer.json";
  std::optional<json> tok;
  if (fs::is_regular_file(tok_path)) tok = read_json(tok_path.string());
  const std::vector<AddedToken> added =
      tok ? read_added_tokens(*tok, tok_path.string()) : std::vector<AddedToken>{};
  SpecialVocab sv;
  read_special_vocab(dir, tok ? &*tok : nullptr, added, config, n, sv, notes);
  write_special_vocab(sv, out);
}

// --- protobuf, just enough for sentencepiece's ModelProto ---------------

struct ProtoReader {
  const uint8_t* p;
  const uint8_t* end;
  const std::string& path;

  bool done() const { return p >= end; }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p >= end) fail(path, ": truncated protobuf varint (not a sentencepiece model?)");
      const uint8_t b = *p++;
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    fail(path, ": protobuf varint longer than 10 bytes (not a sentencepiece model?)");
  }
  // Skips or returns a field's bytes by wire type.
  std::pair<const uint8_t*, uint64_t> field(uint32_t wire) {
    const uint8_t* start = p;
    uint64_t len = 0;
    switch (wire) {
      case 0:
        varint();
        return {start, uint64_t(p - start)};
      case 1:
        len = 8;
        break;
      case 2:
        len = varint();
        start = p;
        break;
      case 5:
        len = 4;
        break;
      default:
        fail(path, ": protobuf wire type ", wire,
             " is not one sentencepiece writes (not a sentencepiece model?)");
    }
    if (len > uint64_t(end - p)) fail(path, ": truncated protobuf field (the file is cut short?)");
    p += len;
    return {start, len};
  }
};

}  // namespace

json read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read '", path, "'");
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) fail(path, ": not valid JSON");
  return j;
}

void Metadata::set(const std::string& key, gguf::Value value) {
  for (auto& [k, v] : items_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  items_.emplace_back(key, std::move(value));
}

const gguf::Value* Metadata::find(const std::string& key) const {
  for (const auto& [k, v] : items_) {
    if (k == key) return &v;
  }
  return nullptr;
}

std::vector<SentencePiece> read_sentencepiece_model(const uint8_t* data, size_t size,
                                                    const std::string& path) {
  std::vector<SentencePiece> pieces;
  ProtoReader model{data, data + size, path};
  while (!model.done()) {
    const uint64_t tag = model.varint();
    const auto [bytes, len] = model.field(uint32_t(tag & 7));
    if (tag >> 3 != 1) continue;  // trainer/normalizer specs: not needed
    if ((tag & 7) != 2) fail(path, ": a piece is not a message (not a sentencepiece model?)");
    SentencePiece sp;
    ProtoReader piece{bytes, bytes + len, path};
    while (!piece.done()) {
      const uint64_t ptag = piece.varint();
      const uint32_t wire = uint32_t(ptag & 7);
      const auto [pb, plen] = piece.field(wire);
      switch (ptag >> 3) {
        case 1:
          if (wire != 2) fail(path, ": a piece's text has wire type ", wire);
          sp.piece.assign(reinterpret_cast<const char*>(pb), plen);
          break;
        case 2:
          if (wire != 5) fail(path, ": a piece's score has wire type ", wire);
          std::memcpy(&sp.score, pb, 4);
          break;
        case 3: {
          if (wire != 0) fail(path, ": a piece's type has wire type ", wire);
          ProtoReader v{pb, pb + plen, path};
          const uint64_t type = v.varint();
          if (type < 1 || type > 6) fail(path, ": piece '", sp.piece, "' has unknown type ", type);
          sp.type = int(type);
          break;
        }
        default:
          break;
      }
    }
    pieces.push_back(std::move(sp));
    if (pieces.size() > kMaxVocab) fail(path, ": more than ", kMaxVocab, " pieces");
  }
  if (pieces.empty()) fail(path, ": no pieces (not a sentencepiece model?)");
  return pieces;
}

void add_tokenizer_metadata(const std::string& dir, const json& config, Metadata& out,
                            std::vector<std::string>& notes) {
  const fs::path tc_path = fs::path(dir) / "tokenizer_config.json";
  const fs::path tok_path = fs::path(dir) / "tokenizer.json";
  const fs::path spm_path = fs::path(dir) / "tokenizer.model";
  try {
    if (fs::is_regular_file(tc_path)) {
      json tc = read_json(tc_path.string());
      if (const json* aps = member(tc, "add_prefix_space"); aps && aps->is_boolean()) {
        out.set("tokenizer.ggml.add_space_prefix", gguf::Value::boolean(aps->get<bool>()));
      }
    }
    // The converter's order: tokenizer.model first, then tokenizer.json.
    if (fs::is_regular_file(spm_path)) {
      sentencepiece_vocab(dir, config, out, notes);
    } else if (fs::is_regular_file(tok_path)) {
      json tok = read_json(tok_path.string());
      const json* model = member(tok, "model");
      const auto type = model ? string_member(*model, "type") : std::nullopt;
      if (type != "BPE") {
        fail(tok_path.string(), ": tokenizer model '", type.value_or("?"),
             "' is not supported (memwall reads BPE tokenizers: byte-level or with byte fallback)");
      }
      const json* bf = member(*model, "byte_fallback");
      const json* im = member(*model, "ignore_merges");
      const bool byte_fallback = bf && bf->is_boolean() && bf->get<bool>();
      const bool ignore_merges = im && im->is_boolean() && im->get<bool>();
      const json* decoder = member(tok, "decoder");
      const bool seq_decoder = decoder && string_member(*decoder, "type") == "Sequence";
      if (byte_fallback && !ignore_merges && seq_decoder) {
        llama_hf_vocab(dir, tok, config, out, notes);
      } else {
        gpt2_vocab(dir, tok, config, out, notes);
      }
    } else {
      fail(dir, ": no tokenizer (needs tokenizer.json or tokenizer.model)");
    }
  } catch (const json::exception& e) {
    // A field of an unexpected JSON type that the checks above did not name.
    fail(dir, ": unexpected tokenizer file contents: ", e.what());
  }
  // llama.cpp's LlamaModel: SmolLM-style 49152-token vocabularies add no BOS.
  if (const json* v = member(config, "vocab_size");
      v && v->is_number_unsigned() && v->get<uint64_t>() == 49152) {
    out.set("tokenizer.ggml.add_bos_token", gguf::Value::boolean(false));
  }
}

}  // namespace memwall::hf
