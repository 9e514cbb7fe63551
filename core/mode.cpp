#include "core/mode.hpp"

#include <cstdlib>
#include <cstring>

namespace ag {

namespace {
bool reference_from_environment() {
  const char* value = std::getenv("AG_REFERENCE");
  return value != nullptr && *value != '\0' && std::strcmp(value, "0") != 0;
}
}  // namespace

bool reference_flag = reference_from_environment();

void set_reference_mode(bool enabled) { reference_flag = enabled; }

const char* mode_name() { return reference_flag ? "reference" : "fast"; }

}  // namespace ag
