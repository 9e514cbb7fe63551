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

// check(cond, "op: {} ...", args...) throws ag::Error with the formatted message.
template <typename... Args>
inline void check(bool condition, fmt::format_string<Args...> message, Args&&... args) {
  if (!condition) throw Error(fmt::format(message, std::forward<Args>(args)...));
}

}  // namespace ag
