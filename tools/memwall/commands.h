// Subcommand registry. Each tools/memwall/cmd_*.cpp registers itself with a
// static CommandRegistration, so adding a subcommand touches one new file.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace memwall::tools {

using CommandAction = std::function<int()>;
// Adds the subcommand's options to `sub` and returns what to run when it is chosen.
using CommandSetup = std::function<CommandAction(CLI::App& sub)>;

struct CommandRegistration {
  // `order` sorts the subcommands in --help.
  CommandRegistration(const char* name, const char* description, int order, CommandSetup setup);
};

void add_commands(CLI::App& app);
// Runs the action of the subcommand that was parsed; 2 if none was.
int run_selected();

}  // namespace memwall::tools
