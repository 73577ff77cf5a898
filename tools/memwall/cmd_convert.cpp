// memwall convert: turn another project's model files into a GGUF memwall runs.
//
//   memwall convert --llama2c MODEL.bin --tokenizer TOKENIZER.bin -o OUT.gguf [--name NAME]
//
// Sources today: llama2.c checkpoints (legacy and version 1, float32) with their
// tokenizer.bin. The output is written to OUT.gguf.tmp and renamed, so a failed
// conversion never leaves a partial OUT.gguf.
#include <cstdio>
#include <memory>
#include <string>

#include "base/error.h"
#include "commands.h"
#include "format/llama2c.h"

namespace memwall::tools {
namespace {

struct ConvertOptions {
  std::string llama2c;
  std::string tokenizer;
  std::string out;
  std::string name;
};

int run_convert(const ConvertOptions& opt) {
  if (opt.llama2c.empty()) fail("convert needs a source model: --llama2c MODEL.bin");
  if (opt.tokenizer.empty()) {
    fail(
        "--llama2c needs the model's tokenizer: --tokenizer TOKENIZER.bin (llama2.c's "
        "tokenizer.bin "
        "for Llama 2 vocab models, or the tokNNN.bin it was trained with)");
  }
  if (opt.out.empty()) fail("convert needs an output file: -o OUT.gguf");
  llama2c::Config c = llama2c::convert(opt.llama2c, opt.tokenizer, opt.out, {opt.name});
  std::printf("wrote %s: llama2.c %s checkpoint, %s; %.2fM parameters (f32)\n", opt.out.c_str(),
              c.version == 0 ? "legacy" : "version-1", c.to_string().c_str(), c.parameters() / 1e6);
  return 0;
}

const CommandRegistration kConvert{
    "convert", "Convert a llama2.c checkpoint and tokenizer into a GGUF model", 70,
    [](CLI::App& sub) -> CommandAction {
      auto opt = std::make_shared<ConvertOptions>();
      sub.add_option("--llama2c", opt->llama2c,
                     "llama2.c checkpoint (.bin, legacy or version 1, float32)")
          ->check(CLI::ExistingFile);
      sub.add_option("--tokenizer", opt->tokenizer,
                     "llama2.c tokenizer (.bin) the model was trained with")
          ->check(CLI::ExistingFile);
      sub.add_option("-o,--output", opt->out, "GGUF file to write (replaced if it exists)");
      sub.add_option("--name", opt->name,
                     "general.name in the GGUF (default: the checkpoint's file name)");
      return [opt] { return run_convert(*opt); };
    }};

}  // namespace
}  // namespace memwall::tools
