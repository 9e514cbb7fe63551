// Two modes, one switch: which code the ops and layers run.
//
//   reference mode  the plain formula code: composed ops, one formula a line.
//                   Every [ID] line runs, a breakpoint on any of them fires,
//                   and AG_TRACE shows the composed ops. For reading and for gdb.
//   fast mode       (the default) fused kernels, behind the same public
//                   functions and layers, next to the plain code in the same file.
//
// Both compute the same thing (tests/test_fast_paths.cpp compares them on
// values, gradients, gradchecks and errors; `make test` runs the suite in both).
// Chosen at run time:
//   AG_REFERENCE=1 ./program                   for a whole run
//   ag::set_reference_mode(true);              from the program
//   { ag::ReferenceModeGuard plain; ... }      for a block
#pragma once

namespace ag {

extern bool reference_flag;  // from AG_REFERENCE when the program starts

inline bool reference_mode() { return reference_flag; }
void set_reference_mode(bool enabled);
// "reference" or "fast", for the trace and the verbose outputs.
const char* mode_name();

// Sets the mode while alive, then restores the one before.
class ReferenceModeGuard {
 public:
  explicit ReferenceModeGuard(bool enabled = true) : previous_(reference_mode()) {
    set_reference_mode(enabled);
  }
  ~ReferenceModeGuard() { set_reference_mode(previous_); }
  ReferenceModeGuard(const ReferenceModeGuard&) = delete;
  ReferenceModeGuard& operator=(const ReferenceModeGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace ag
