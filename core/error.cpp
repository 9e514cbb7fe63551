// ag::Error's record of where it was raised, and what an uncaught one prints.
#include "core/error.hpp"

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "core/backtrace.hpp"

namespace ag {

struct Error::Location {
  std::string where;   // the first frame outside attograd
  std::string called;  // the attograd function that frame called
};

Error::Error(const std::string& message, std::source_location raised)
    : std::runtime_error(message),
      raised_(raised),
      stack_(std::make_shared<const std::vector<uintptr_t>>(backtrace::capture())) {}

const Error::Location& Error::location() const {
  if (location_) return *location_;
  auto found = std::make_shared<Location>();
  // Innermost first: attograd's frames (the check, then the functions that
  // led to it), then the program's frame that called into attograd. Frames of
  // the standard library in between (std::function, algorithms) are skipped.
  std::string outermost_attograd;
  for (const backtrace::Frame& frame : backtrace::resolve(*stack_)) {
    if (frame.function.rfind("ag::Error::Error", 0) == 0) continue;  // the making of this Error
    if (frame.owner == backtrace::Owner::attograd) {
      outermost_attograd = frame.function;
    } else if (frame.owner == backtrace::Owner::program) {
      found->where = backtrace::to_string(frame);
      found->called = backtrace::short_function_name(outermost_attograd);
      break;
    }
  }
  location_ = found;
  return *location_;
}

std::string Error::raised_at() const {
  std::string file = raised_.file_name();
  while (file.rfind("./", 0) == 0) file.erase(0, 2);
  return file + ":" + std::to_string(raised_.line());
}

std::string Error::where() const { return location().where; }

std::string Error::called() const { return location().called; }

std::string Error::report() const {
  const Location& at = location();
  std::string out = fmt::format("  what():  {}\n", what());
  if (at.where.empty())
    out += fmt::format(
        "  where:   raised at {}; the calling line is unknown (build with -g for file:line)\n",
        raised_at());
  else
    out += fmt::format("  where:   {}, calling {} (raised at {})\n", at.where,
                       at.called.empty() ? "attograd" : at.called, raised_at());
  out += "  gdb:     `catch throw`, then `run`, stops where it is thrown; `bt` lists the calls\n";
  return out;
}

namespace {

std::terminate_handler previous_handler = nullptr;

// An uncaught ag::Error says where it came from; anything else goes to the
// handler that was there before (libstdc++'s, which prints what() and aborts).
[[noreturn]] void report_uncaught() {
  if (std::exception_ptr current = std::current_exception()) {
    try {
      std::rethrow_exception(current);
    } catch (const Error& error) {
      std::fprintf(stderr, "terminate called after throwing an instance of 'ag::Error'\n%s",
                   error.report().c_str());
      std::fflush(stderr);
      std::abort();
    } catch (...) {
    }
  }
  if (previous_handler != nullptr) previous_handler();
  std::abort();
}

// Installed when the program starts: every program that can throw an
// ag::Error links this file (the Error constructor is here).
[[maybe_unused]] const bool handler_installed = [] {
  previous_handler = std::set_terminate(report_uncaught);
  return true;
}();

}  // namespace

}  // namespace ag
