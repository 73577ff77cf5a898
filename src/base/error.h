// The one error type of memwall. Library code throws it with a message a user
// can act on; only the binary catches it, prints "error: ..." and exits.
// Kernels never throw: they are called after their inputs were validated.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace memwall {

class Error : public std::runtime_error {
 public:
  explicit Error(std::string message) : std::runtime_error(std::move(message)) {}
};

// Builds a message from pieces: fail("tensor ", name, " has ", n, " dims").
template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  throw Error(out.str());
}

}  // namespace memwall
