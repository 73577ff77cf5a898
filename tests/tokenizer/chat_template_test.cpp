// Chat templates: detection from the Jinja source and exact renderings. The
// expected strings were produced by rendering the real templates with Jinja2
// (trim_blocks, lstrip_blocks: HF's settings) and copied here.
#include "tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "format/gguf_reader.h"
#include "tokenizer/tokenizer.h"

namespace memwall {
namespace {

// tokenizer.chat_template of SmolLM2-135M-Instruct, byte for byte.
const std::string kSmolLM2 =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}";
const std::string kSmolSystem =
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n";

TEST(ChatTemplate, SmolLM2IsChatMLWithItsOwnDefaultSystemMessage) {
  ChatTemplate t = ChatTemplate::detect(kSmolLM2);
  EXPECT_EQ(t.format(), ChatTemplate::Format::kChatML);
  EXPECT_EQ(t.note(), "");
  EXPECT_EQ(t.default_system(),
            "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
}

TEST(ChatTemplate, SmolLM2RenderingsMatchJinja) {
  ChatTemplate t = ChatTemplate::detect(kSmolLM2);
  EXPECT_EQ(t.render({{"user", "hi"}}, true),
            kSmolSystem + "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(t.render({{"user", "hi"}}, false), kSmolSystem + "<|im_start|>user\nhi<|im_end|>\n");
  EXPECT_EQ(t.render({{"system", "Be brief."}, {"user", "What is 2+2?"}}, true),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is "
            "2+2?<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(
      t.render(
          {{"user", "Hello"}, {"assistant", "Hi! How can I help?"}, {"user", "Tell me a joke."}},
          true),
      kSmolSystem +
          "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\nHi! How can I "
          "help?<|im_end|>\n<|im_start|>user\nTell me a joke.<|im_end|>\n"
          "<|im_start|>assistant\n");
  EXPECT_EQ(t.render({}, true), "<|im_start|>assistant\n");
  EXPECT_EQ(t.render({{"assistant", "x"}}, false),
            kSmolSystem + "<|im_start|>assistant\nx<|im_end|>\n");
}

TEST(ChatTemplate, DefaultSystemComesFromTheTemplateText) {
  // Escaped newlines, another sentence, double quotes: still found, not hard-coded.
  EXPECT_EQ(extract_default_system(
                R"({{ "<|im_start|>system\nYou are Qwen, a \"helpful\" bot.<|im_end|>\n" }})"),
            "You are Qwen, a \"helpful\" bot.");
  // The system text comes from the messages: no default.
  EXPECT_EQ(extract_default_system(
                "{{ '<|im_start|>system\n' + messages[0]['content'] + '<|im_end|>\n' }}"),
            "");
  ChatTemplate plain = ChatTemplate::detect(
      "{% for m in messages %}{{'<|im_start|>' + m['role'] + '\n' + m['content'] + "
      "'<|im_end|>\n'}}{% endfor %}");
  EXPECT_EQ(plain.default_system(), "");
  EXPECT_EQ(plain.render({{"user", "hi"}}, true),
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
}

const std::vector<ChatMessage> kConversation = {
    {"system", "Be brief."}, {"user", " Hello \n"}, {"assistant", "Hi there. "}, {"user", "2+2?"}};

TEST(ChatTemplate, Llama3) {
  ChatTemplate t = ChatTemplate::detect(
      "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' %}");
  EXPECT_EQ(t.format(), ChatTemplate::Format::kLlama3);
  // Jinja output minus the leading bos_token, which encode() adds.
  EXPECT_EQ(t.render(kConversation, true),
            "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nHello<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\nHi there.<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\n2+2?<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST(ChatTemplate, Llama2) {
  ChatTemplate t = ChatTemplate::detect(
      "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}", "<s>", "</s>");
  EXPECT_EQ(t.format(), ChatTemplate::Format::kLlama2);
  EXPECT_EQ(t.render(kConversation, true),
            "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\n Hello [/INST] Hi there. </s><s>[INST] 2+2? "
            "[/INST]");
}

TEST(ChatTemplate, Zephyr) {
  ChatTemplate t =
      ChatTemplate::detect("{{ '<|user|>\n' + message['content'] + eos_token }}", "<s>", "</s>");
  EXPECT_EQ(t.format(), ChatTemplate::Format::kZephyr);
  EXPECT_EQ(t.render(kConversation, true),
            "<|system|>\nBe brief.</s>\n<|user|>\n Hello \n</s>\n<|assistant|>\nHi there. "
            "</s>\n<|user|>\n2+2?</s>\n<|assistant|>\n");
}

TEST(ChatTemplate, UnknownOrMissingFallsBackToChatMLWithANote) {
  ChatTemplate missing = ChatTemplate::detect("");
  EXPECT_EQ(missing.format(), ChatTemplate::Format::kChatML);
  EXPECT_NE(missing.note().find("no chat template"), std::string::npos);
  ChatTemplate odd = ChatTemplate::detect("{{ '### Human: ' + m }}");
  EXPECT_EQ(odd.format_name(), "chatml");
  EXPECT_NE(odd.note().find("not one memwall recognises"), std::string::npos);
  EXPECT_EQ(odd.render({{"user", "hi"}}, true),
            "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
}

TEST(ChatTemplate, FromTheDefaultModel) {
  const std::string path =
      std::string(MEMWALL_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "default model not fetched: " << path;
  gguf::File file = gguf::File::open(path);
  Tokenizer tok = Tokenizer::from_gguf(file);
  ChatTemplate t = ChatTemplate::from_gguf(file, tok);
  EXPECT_EQ(t.format(), ChatTemplate::Format::kChatML);
  EXPECT_EQ(t.render({{"user", "hi"}}, true),
            ChatTemplate::detect(kSmolLM2).render({{"user", "hi"}}, true));
  // The prompt's control tokens become single tokens; the turn end is an end of generation.
  std::vector<int32_t> ids = tok.encode(t.render({{"user", "hi"}}, true), true);
  EXPECT_EQ(ids.front(), 1);  // <|im_start|>, no BOS for SmolLM2
  EXPECT_EQ(std::vector<int32_t>(ids.end() - 4, ids.end()),
            (std::vector<int32_t>{1, 520, 9531, 198}));
  EXPECT_TRUE(tok.is_end_of_generation(2));  // <|im_end|>
  EXPECT_TRUE(tok.is_end_of_generation(0));  // <|endoftext|>
  EXPECT_FALSE(tok.is_end_of_generation(1));
}

}  // namespace
}  // namespace memwall
