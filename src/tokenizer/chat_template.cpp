#include "tokenizer/chat_template.h"

#include <utility>

#include "format/gguf_reader.h"
#include "tokenizer/tokenizer.h"

namespace memwall {
namespace {

bool contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// Python's str.strip() on ASCII white space, which the Llama templates apply.
std::string_view strip(std::string_view s) {
  const char* ws = " \t\n\r\f\v";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

// Undoes the escapes a Jinja string literal may hold (\n, \t, \', \", \\).
std::string unescape(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '\\' || i + 1 == s.size()) {
      out += s[i];
      continue;
    }
    char c = s[++i];
    switch (c) {
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case 'r':
        out += '\r';
        break;
      default:
        out += c;
        break;  // \' \" \\ and anything else: the character itself
    }
  }
  return out;
}

// [begin, end) of the string literal that contains `pos`, or npos if `pos`
// is not inside one. Scans from the start so escaped quotes are honoured.
std::pair<size_t, size_t> literal_around(std::string_view src, size_t pos) {
  char quote = 0;
  size_t begin = 0;
  for (size_t i = 0; i < src.size(); ++i) {
    char c = src[i];
    if (quote) {
      if (c == '\\') {
        ++i;
      } else if (c == quote) {
        if (pos >= begin && pos < i) return {begin, i};
        quote = 0;
      }
    } else if (c == '\'' || c == '"') {
      quote = c;
      begin = i + 1;
    }
  }
  return {std::string_view::npos, std::string_view::npos};
}

}  // namespace

std::string extract_default_system(std::string_view src) {
  constexpr std::string_view kOpen = "<|im_start|>system";
  constexpr std::string_view kClose = "<|im_end|>";
  for (size_t at = src.find(kOpen); at != std::string_view::npos; at = src.find(kOpen, at + 1)) {
    auto [begin, end] = literal_around(src, at);
    if (begin == std::string_view::npos) continue;
    std::string_view literal = src.substr(begin, end - begin);
    size_t p = at - begin + kOpen.size();
    // The role line ends with a newline, written raw or as the escape \n.
    if (literal.substr(p, 1) == "\n") {
      p += 1;
    } else if (literal.substr(p, 2) == "\\n") {
      p += 2;
    } else {
      continue;
    }
    size_t close = literal.find(kClose, p);
    // No closing tag in the same literal: the content comes from a variable
    // (the user's own system message), not a default.
    if (close == std::string_view::npos) continue;
    return unescape(literal.substr(p, close - p));
  }
  return {};
}

ChatTemplate ChatTemplate::detect(std::string_view src, std::string bos_text,
                                  std::string eos_text) {
  ChatTemplate t;
  t.bos_text_ = std::move(bos_text);
  t.eos_text_ = std::move(eos_text);
  if (contains(src, "<|im_start|>")) {
    t.format_ = Format::kChatML;
    t.default_system_ = extract_default_system(src);
  } else if (contains(src, "<|start_header_id|>")) {
    t.format_ = Format::kLlama3;
  } else if (contains(src, "[INST]")) {
    t.format_ = Format::kLlama2;
  } else if (contains(src, "<|user|>")) {
    t.format_ = Format::kZephyr;
  } else {
    t.format_ = Format::kChatML;
    t.note_ = src.empty() ? "the model has no chat template; using ChatML"
                          : "the model's chat template is not one memwall recognises "
                            "(ChatML, Llama 3, Llama 2, Zephyr); using ChatML";
  }
  return t;
}

ChatTemplate ChatTemplate::from_gguf(const gguf::File& file, const Tokenizer& tokenizer) {
  std::string src = file.get_string("tokenizer.chat_template", "");
  auto text_of = [&](int32_t id, const char* fallback) {
    return id >= 0 ? std::string(tokenizer.token_text(id)) : std::string(fallback);
  };
  return detect(src, text_of(tokenizer.bos_id(), "<s>"), text_of(tokenizer.eos_id(), "</s>"));
}

std::string_view ChatTemplate::format_name() const {
  switch (format_) {
    case Format::kChatML:
      return "chatml";
    case Format::kLlama3:
      return "llama3";
    case Format::kLlama2:
      return "llama2";
    case Format::kZephyr:
      return "zephyr";
  }
  return "chatml";
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages,
                                 bool add_generation_prompt) const {
  std::string out;
  switch (format_) {
    case Format::kChatML: {
      if (!messages.empty() && messages[0].role != "system" && !default_system_.empty()) {
        out += "<|im_start|>system\n" + default_system_ + "<|im_end|>\n";
      }
      for (const auto& m : messages) {
        out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      }
      if (add_generation_prompt) out += "<|im_start|>assistant\n";
      break;
    }
    case Format::kLlama3: {
      for (const auto& m : messages) {
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n";
        out += strip(m.content);
        out += "<|eot_id|>";
      }
      if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      break;
    }
    case Format::kLlama2: {
      // Meta's template: the system prompt is folded into the first user turn.
      size_t first = 0;
      std::string system;
      if (!messages.empty() && messages[0].role == "system") {
        system = messages[0].content;
        first = 1;
      }
      for (size_t i = first; i < messages.size(); ++i) {
        std::string content = messages[i].content;
        if (i == first && !system.empty()) {
          content = "<<SYS>>\n" + system + "\n<</SYS>>\n\n" + content;
        }
        if (messages[i].role == "assistant") {
          out += " ";
          out += strip(content);
          out += " " + eos_text_;
        } else {
          if (i != first) out += bos_text_;  // the first BOS comes from encode()
          out += "[INST] ";
          out += strip(content);
          out += " [/INST]";
        }
      }
      break;
    }
    case Format::kZephyr: {
      for (const auto& m : messages) {
        out += "<|" + m.role + "|>\n" + m.content + eos_text_ + "\n";
      }
      if (add_generation_prompt) out += "<|assistant|>\n";
      break;
    }
  }
  return out;
}

}  // namespace memwall
