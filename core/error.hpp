// ag::Error: the one exception type for user mistakes.
//
// Every message names the operation, the shapes or values involved, and what
// would be valid, e.g.
//   matmul: cannot multiply (2,3) by (2,3): inner sizes 3 and 2 differ
#pragma once

#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace ag {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
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
