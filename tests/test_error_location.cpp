// Where an ag::Error comes from: the check in attograd that refused
// (raised_at), the attograd function the program called (called), and the
// line of the program that called it (where), read from the stack with GCC's
// libbacktrace (core/backtrace.hpp). tests/programs/check_uncaught.sh checks
// what an uncaught one prints.
#include <doctest/doctest.h>

#include <filesystem>
#include <functional>
#include <string>

#include "core/backtrace.hpp"
#include "layers/nn.hpp"
#include "tests/helpers.hpp"

using namespace ag;

namespace {

// The Error the call raises; fails the test if there is none.
template <typename F>
Error error_of(F call) {
  try {
    call();
  } catch (const Error& e) {
    return e;
  }
  FAIL("expected an ag::Error");
  return Error("none");
}

// Each call below is on its own line, kept out of line, so that the frame
// that makes it is this file's.
const int kMatmulLine = __LINE__ + 3;
[[gnu::noinline]] void multiply_wrong_shapes() {
  Tensor a = ones({2, 3}), b = ones({2, 3});
  (void)matmul(a, b);
}

const int kLinearLine = __LINE__ + 3;
[[gnu::noinline]] void linear_on_wrong_features() {
  nn::Linear layer(3, 2);
  (void)layer.forward(ones({4, 5}));
}

std::string here(int line) { return "tests/test_error_location.cpp:" + std::to_string(line); }

}  // namespace

TEST_CASE("errors: an Error names the line of the program that made the call, and the op") {
  const Error e = error_of(multiply_wrong_shapes);
  INFO("where: " << e.where() << ", called: " << e.called() << ", raised at " << e.raised_at());
  CHECK(std::string(e.what()) == "matmul: cannot multiply (2,3) by (2,3): inner sizes 3 and 2 differ");
  CHECK(e.where().rfind(here(kMatmulLine) + " in ", 0) == 0);
  CHECK(e.where().find("multiply_wrong_shapes") != std::string::npos);
  CHECK(e.called() == "ag::matmul");
  CHECK(e.raised_at().rfind("autograd/ops_matmul.cpp:", 0) == 0);
}

TEST_CASE("errors: through a layer, the frame outside attograd is still the caller's") {
  const Error e = error_of(linear_on_wrong_features);
  INFO("where: " << e.where() << ", called: " << e.called());
  CHECK(e.where().rfind(here(kLinearLine) + " in ", 0) == 0);
  CHECK(e.called() == "ag::nn::Linear::forward");
  CHECK(e.raised_at().rfind("layers/basic/linear.cpp:", 0) == 0);
}

TEST_CASE("errors: frames of the standard library between are skipped (std::function)") {
  const int line = __LINE__ + 1;
  std::function<void()> call = [] { (void)softmax(ones({2, 3}), 5); };
  const Error e = error_of(call);
  INFO("where: " << e.where());
  CHECK(e.where().rfind(here(line) + " in ", 0) == 0);
  CHECK(e.called() == "ag::softmax");
}

TEST_CASE("errors: a copy of an Error keeps where it was raised; report() says it all") {
  Error copy("none");
  try {
    multiply_wrong_shapes();
  } catch (const Error& e) {
    copy = e;
  }
  CHECK(copy.where().rfind(here(kMatmulLine), 0) == 0);
  const std::string report = copy.report();
  INFO(report);
  CHECK(report.find("what():  matmul: cannot multiply (2,3) by (2,3)") != std::string::npos);
  CHECK(report.find("where:   " + here(kMatmulLine)) != std::string::npos);
  CHECK(report.find("calling ag::matmul (raised at autograd/ops_matmul.cpp:") != std::string::npos);
  CHECK(report.find("catch throw") != std::string::npos);
}

TEST_CASE("errors: an Error made outside any call into attograd names its own line") {
  const int line = __LINE__ + 1;
  const Error e("made here");
  CHECK(e.raised_at() == here(line));
  CHECK(e.where().rfind(here(line), 0) == 0);
  CHECK(e.called().empty());
}

TEST_CASE("errors: whose code a frame runs, and function names without their signature") {
  using backtrace::Owner;
  using backtrace::owner_of_file;
  CHECK(owner_of_file("core/tensor.cpp") == Owner::attograd);
  CHECK(owner_of_file("./autograd/node.hpp") == Owner::attograd);
  CHECK(owner_of_file("layers/basic/linear.cpp") == Owner::attograd);
  CHECK(owner_of_file("tutorials/03_point_attention.cpp") == Owner::program);
  CHECK(owner_of_file("mine.cpp") == Owner::program);
  CHECK(owner_of_file("/home/me/core_ideas/mine.cpp") == Owner::program);
  CHECK(owner_of_file("/usr/include/c++/12/bits/std_function.h") == Owner::system);
  CHECK(owner_of_file("../sysdeps/nptl/libc_start_call_main.h") == Owner::system);
  using backtrace::short_function_name;
  CHECK(short_function_name("ag::Tensor ag::matmul(const ag::Tensor&, const ag::Tensor&)") ==
        "ag::matmul");
  CHECK(short_function_name("ag::matmul(ag::Tensor const&, ag::Tensor const&)") == "ag::matmul");
  CHECK(short_function_name("main") == "main");
  CHECK(short_function_name("int main()") == "main");
  CHECK(short_function_name("ag::nn::Linear::forward(ag::Tensor const&) const") ==
        "ag::nn::Linear::forward");
  CHECK(short_function_name("std::vector<int, std::allocator<int> >::size() const") ==
        "std::vector<int, std::allocator<int> >::size");
  CHECK(short_function_name("main::{lambda()#1}::operator()() const") ==
        "main::{lambda()#1}::operator()");
  CHECK(backtrace::to_string({"./mine.cpp", 12, "main", Owner::program}) == "mine.cpp:12 in main");
  // A file in the directory the compiler ran in comes with that directory (DWARF 5).
  const std::string here = std::filesystem::current_path().string();
  CHECK(backtrace::to_string({here + "/mine.cpp", 12, "main", Owner::program}) ==
        "mine.cpp:12 in main");
  CHECK(backtrace::to_string({"/elsewhere/mine.cpp", 3, "main", Owner::program}) ==
        "/elsewhere/mine.cpp:3 in main");
  CHECK(backtrace::to_string({"", 0, "ag::matmul(ag::Tensor const&)", Owner::attograd}) ==
        "ag::matmul");
}
