// Chat prompt formats, recognised from the model's Jinja template
// (tokenizer.chat_template) by their markers rather than by running Jinja:
// ChatML (<|im_start|>), Llama 3 (<|start_header_id|>), Llama 2 ([INST]) and
// Zephyr (<|user|>). A missing or unrecognised template falls back to ChatML,
// with a note() the caller should show the user.
//
// Rendering leaves out a BOS at the very start of the prompt: encode the result
// with add_special = true and the model's own BOS rule adds it exactly once.
// Special tokens in the rendered text (<|im_start|>, </s>, ...) are meant to
// be parsed by encode() with parse_special = true.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace memwall {

namespace gguf {
class File;
}
class Tokenizer;

struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

class ChatTemplate {
 public:
  enum class Format { kChatML, kLlama3, kLlama2, kZephyr };

  // `bos_text`/`eos_text`: the model's BOS/EOS token text, used where the
  // format spells them out (Llama 2 between turns, Zephyr after each message).
  static ChatTemplate detect(std::string_view jinja_source, std::string bos_text = "<s>",
                             std::string eos_text = "</s>");
  // Reads tokenizer.chat_template (absent is fine: ChatML with a note).
  static ChatTemplate from_gguf(const gguf::File& file, const Tokenizer& tokenizer);

  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;

  Format format() const { return format_; }
  std::string_view format_name() const;
  // Empty when the template was recognised; otherwise says what was assumed.
  const std::string& note() const { return note_; }
  // ChatML only: the system message the template injects when the conversation
  // does not start with one (taken from the template text), or empty.
  const std::string& default_system() const { return default_system_; }

 private:
  Format format_ = Format::kChatML;
  std::string note_;
  std::string default_system_;
  std::string bos_text_, eos_text_;
};

// Finds a literal ChatML system turn in a Jinja template
// ('<|im_start|>system\n...<|im_end|>' inside one string literal) and returns
// its text with Jinja string escapes undone; empty if there is none.
std::string extract_default_system(std::string_view jinja_source);

}  // namespace memwall
