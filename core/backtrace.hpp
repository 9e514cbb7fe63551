// Stack traces, so that an ag::Error can say which line of YOUR program made
// the call that went wrong, not only which check inside attograd refused it.
//
// Two steps, because the second is slow and rarely needed:
//   capture()  the return addresses of the current stack (a few microseconds,
//              done when an ag::Error is made);
//   resolve()  each address as file:line and function, read from the
//              program's debug information (-g) the first time it is asked
//              (done when the error is printed, e.g. when nothing caught it).
//
// Built on libbacktrace, which ships with GCC (backtrace.h in GCC's include
// directory, linked with -lbacktrace). Without debug information (a program
// built without -g) a frame still has its function, from the symbol table.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ag::backtrace {

// Whose code a frame runs.
enum class Owner {
  attograd,  // core/, autograd/, layers/
  system,    // the C and C++ runtime, the standard library's and fmt's headers
  program,   // everything else: a chapter, a test, a learner's program
};

struct Frame {
  std::string file;  // as it was compiled ("tutorials/03_point_attention.cpp"); empty if unknown
  int line = 0;      // 0 if unknown
  std::string function;  // "main", "ag::matmul"; empty if unknown
  Owner owner = Owner::program;
};

// The return addresses of the calling thread's stack, innermost first,
// starting at capture()'s caller.
std::vector<uintptr_t> capture();

// The frames at those addresses, innermost first; a call that the compiler
// inlined is a frame of its own, as in gdb's `bt`.
std::vector<Frame> resolve(const std::vector<uintptr_t>& addresses);

// Which of attograd's directories `file` (a path as a frame gives it) is in.
Owner owner_of_file(const std::string& file);

// "mine.cpp:12 in main", "main" (no debug information), or "" (nothing known).
// A file under the directory the program runs in is shown relative to it.
std::string to_string(const Frame& frame);

// "ag::Tensor ag::matmul(const ag::Tensor&, const ag::Tensor&)" -> "ag::matmul":
// a function's name without its return type and parameters.
std::string short_function_name(const std::string& signature);

}  // namespace ag::backtrace
