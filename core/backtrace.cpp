#include "core/backtrace.hpp"

#include <backtrace.h>  // libbacktrace, from GCC's include directory
#include <cxxabi.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>

// The directory attograd is built in (the Makefile passes it for this file):
// lets a header included by absolute path (-I/path/to/attograd) still be
// recognised as attograd's.
#ifndef AG_SOURCE_ROOT
#define AG_SOURCE_ROOT ""
#endif

namespace ag::backtrace {

namespace {

// libbacktrace keeps what it read of the debug information in this state; it
// is made once and never freed (libbacktrace has no way to free it).
backtrace_state* state() {
  static backtrace_state* const shared =
      backtrace_create_state(nullptr, /*threaded=*/1, [](void*, const char*, int) {}, nullptr);
  return shared;
}

void ignore_error(void*, const char*, int) {}

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// "_ZN2ag6matmulE..." -> "ag::matmul(...)"; other names as they are (debug
// information often gives them unmangled already).
std::string demangle(const char* name) {
  if (name == nullptr) return {};
  if (name[0] != '_' || name[1] != 'Z') return name;
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> plain(
      abi::__cxa_demangle(name, nullptr, nullptr, &status), &std::free);
  return status == 0 && plain ? plain.get() : name;
}

Owner owner_of_function(const std::string& function) {
  if (function.empty()) return Owner::system;  // nothing known: not a line to show
  for (const char* prefix : {"ag::tutorial::", "ag::testing::", "ag::exercise::"})
    if (starts_with(function, prefix)) return Owner::program;
  if (starts_with(function, "ag::")) return Owner::attograd;
  for (const char* prefix : {"std::", "__gnu_cxx::", "fmt::", "__", "_Unwind", "_start"})
    if (starts_with(function, prefix)) return Owner::system;
  return Owner::program;
}

struct Collected {
  std::vector<Frame>* frames;
  uintptr_t address;
};

}  // namespace

std::vector<uintptr_t> capture() {
  std::vector<uintptr_t> addresses;
  backtrace_state* s = state();
  if (s == nullptr) return addresses;
  addresses.reserve(32);
  backtrace_simple(
      s, /*skip=*/1,
      [](void* data, uintptr_t pc) {
        if (pc != static_cast<uintptr_t>(-1)) static_cast<std::vector<uintptr_t>*>(data)->push_back(pc);
        return 0;
      },
      ignore_error, &addresses);
  return addresses;
}

Owner owner_of_file(const std::string& path) {
  std::string file = path;
  while (starts_with(file, "./")) file.erase(0, 2);
  const std::string root = AG_SOURCE_ROOT;
  if (!root.empty() && starts_with(file, (root + "/").c_str())) file.erase(0, root.size() + 1);
  for (const char* dir : {"core/", "autograd/", "layers/"})
    if (starts_with(file, dir)) return Owner::attograd;
  // The system's headers and the C library's own sources (glibc's debug
  // information names files such as ../sysdeps/nptl/libc_start_call_main.h).
  if (starts_with(file, "/usr/") || file.find("sysdeps/") != std::string::npos ||
      file.find("/csu/") != std::string::npos || starts_with(file, "../csu/") ||
      file.find("libstdc++-v3/") != std::string::npos)
    return Owner::system;
  return Owner::program;
}

std::vector<Frame> resolve(const std::vector<uintptr_t>& addresses) {
  std::vector<Frame> frames;
  backtrace_state* s = state();
  if (s == nullptr) return frames;
  for (uintptr_t pc : addresses) {
    const size_t before = frames.size();
    Collected collected{&frames, pc};
    backtrace_pcinfo(
        s, pc,
        [](void* data, uintptr_t, const char* file, int line, const char* function) {
          if (file == nullptr && function == nullptr) return 0;
          Frame frame;
          frame.file = file ? file : "";
          frame.line = file ? line : 0;
          frame.function = demangle(function);
          frame.owner = file ? owner_of_file(frame.file) : owner_of_function(frame.function);
          static_cast<Collected*>(data)->frames->push_back(std::move(frame));
          return 0;
        },
        ignore_error, &collected);
    if (frames.size() != before) continue;
    // No debug information here: the function's name from the symbol table.
    backtrace_syminfo(
        s, pc,
        [](void* data, uintptr_t, const char* symbol, uintptr_t, uintptr_t) {
          Frame frame;
          frame.function = demangle(symbol);
          frame.owner = owner_of_function(frame.function);
          static_cast<Collected*>(data)->frames->push_back(std::move(frame));
        },
        ignore_error, &collected);
  }
  return frames;
}

std::string short_function_name(const std::string& signature) {
  std::string name = signature;
  if (name.size() > 6 && name.ends_with(" const")) name.resize(name.size() - 6);
  // Drop the parameter list: the last (...) group, unless it is operator()'s own name.
  if (!name.empty() && name.back() == ')') {
    int depth = 0;
    for (size_t i = name.size(); i-- > 0;) {
      if (name[i] == ')') ++depth;
      if (name[i] == '(' && --depth == 0) {
        if (!std::string_view(name).substr(0, i).ends_with("operator")) name.resize(i);
        break;
      }
    }
  }
  // Drop a return type: everything up to the last space outside <...> and (...).
  int depth = 0;
  size_t cut = std::string::npos;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    if (c == '<' || c == '(') ++depth;
    if (c == '>' || c == ')') --depth;
    if (c == ' ' && depth == 0) cut = i;
  }
  if (cut != std::string::npos && name.find("operator", cut) != cut + 1) name.erase(0, cut + 1);
  return name;
}

std::string to_string(const Frame& frame) {
  const std::string function = short_function_name(frame.function);
  if (frame.file.empty()) return function;
  std::string file = frame.file;
  while (starts_with(file, "./")) file.erase(0, 2);
  // The compiler gives a file of the directory it ran in by its absolute path
  // (DWARF 5's directory 0): shown relative to where the program runs, or to
  // attograd's directory, as the others are.
  std::error_code failed;
  for (const std::string& dir : {std::filesystem::current_path(failed).string(),
                                 std::string(AG_SOURCE_ROOT)})
    if (!dir.empty() && dir != "/" && starts_with(file, (dir + "/").c_str())) {
      file.erase(0, dir.size() + 1);
      break;
    }
  std::string out = file + ":" + std::to_string(frame.line);
  if (!function.empty()) out += " in " + function;
  return out;
}

}  // namespace ag::backtrace
