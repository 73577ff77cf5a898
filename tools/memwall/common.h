// Small helpers shared by the subcommands.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace memwall::tools {

// The model used when -m is omitted: $MEMWALL_MODEL, else
// models/SmolLM2-135M-Instruct.Q4_1.gguf under the current directory or
// beside the binary's source tree. Throws with the fetch hint if none exists.
std::string default_model_path();

// Parses "12 5 901" into token ids; throws Error on anything else.
std::vector<int32_t> parse_token_ids(const std::string& text);

// The whole file named by a flag (`flag` names it in errors: missing,
// a directory, unreadable).
std::string read_text_file(const std::string& path, const std::string& flag);

// Resolves -m: the given path, or the default model when empty.
std::string resolve_model_path(const std::string& given);

}  // namespace memwall::tools
