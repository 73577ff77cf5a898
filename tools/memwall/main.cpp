// memwall: run and train language models inside a fixed memory budget.
// One binary, one subcommand per job; each subcommand is a thin layer over src/.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "base/error.h"
#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"memwall: run language models inside a fixed memory budget", "memwall"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "memwall 0.1.0");
  memwall::tools::add_commands(app);
  try {
    app.parse(argc, argv);
    return memwall::tools::run_selected();
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::fprintf(stderr, "error: %s (see 'memwall --help')\n", e.what());
    return 2;
  } catch (const memwall::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
