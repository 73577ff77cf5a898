#include "commands.h"

#include <algorithm>
#include <string>
#include <vector>

namespace memwall::tools {
namespace {

struct Entry {
  std::string name;
  std::string description;
  int order;
  CommandSetup setup;
};

std::vector<Entry>& registry() {
  static std::vector<Entry> entries;
  return entries;
}

std::vector<std::pair<CLI::App*, CommandAction>>& actions() {
  static std::vector<std::pair<CLI::App*, CommandAction>> list;
  return list;
}

}  // namespace

CommandRegistration::CommandRegistration(const char* name, const char* description, int order,
                                         CommandSetup setup) {
  registry().push_back({name, description, order, std::move(setup)});
}

void add_commands(CLI::App& app) {
  auto entries = registry();
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& a, const Entry& b) { return a.order < b.order; });
  for (Entry& e : entries) {
    CLI::App* sub = app.add_subcommand(e.name, e.description);
    actions().emplace_back(sub, e.setup(*sub));
  }
}

int run_selected() {
  for (auto& [sub, action] : actions()) {
    if (sub->parsed()) return action();
  }
  return 2;
}

}  // namespace memwall::tools
