// ag::Error: the one exception type for user mistakes.
//
// Every message names the operation, the shapes or values involved, and what
// would be valid, e.g.
//   matmul: cannot multiply (2,3) by (2,3): inner sizes 3 and 2 differ
//
// An Error also records where it was raised: the check in attograd that
// failed (raised_at), and the stack, from which where() names the first frame
// outside attograd, the line of the program that made the call:
//   mine.cpp:12 in main
// An Error that nothing catches prints both (core/error.cpp), instead of only
// "terminate called after throwing an instance of 'ag::Error'".
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <memory>
#include <source_location>
#include <stdexcept>
#include <string>
#include <vector>

namespace ag {

class Error : public std::runtime_error {
 public:
  // `raised` defaults to the place the Error is made: the AG_CHECK's line.
  explicit Error(const std::string& message,
                 std::source_location raised = std::source_location::current());

  // The check that refused, in attograd: "autograd/ops_matmul.cpp:40".
  std::string raised_at() const;
  // The first stack frame outside attograd (and outside the standard
  // library): "mine.cpp:12 in main" with debug information (-g), "main"
  // without; "" if the stack says nothing. Read from the program's debug
  // information when first asked (milliseconds), not when thrown.
  std::string where() const;
  // The attograd function that frame called, e.g. "ag::matmul" or
  // "ag::nn::Linear::forward"; "" if unknown.
  std::string called() const;
  // The lines printed for an Error nobody caught (without the first, "terminate called ..."):
  //   what():  matmul: cannot multiply ...
  //   where:   mine.cpp:12 in main, calling ag::matmul (raised at autograd/ops_matmul.cpp:40)
  //   gdb:     ...
  std::string report() const;

 private:
  struct Location;
  const Location& location() const;

  std::source_location raised_;
  std::shared_ptr<const std::vector<uintptr_t>> stack_;  // shared: copying an Error cannot throw
  mutable std::shared_ptr<const Location> location_;     // resolved from stack_ on first use
};

}  // namespace ag

// AG_CHECK(condition, "op: {} ...", args...) throws ag::Error with the
// formatted message when the condition is false. A macro, not a function, so
// that the message's arguments (shape strings and the like) are computed only
// when the check fails: checks sit on every op's path.
#define AG_CHECK(condition, ...)                                   \
  do {                                                             \
    if (!(condition)) throw ::ag::Error(fmt::format(__VA_ARGS__)); \
  } while (0)
