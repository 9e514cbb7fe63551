// Entry point of the attograd test binary (build/<flavor>/tests/attograd_tests).
//
// The test cases live in the other tests/*.cpp files; they only
// `#include <doctest/doctest.h>` and must NOT define DOCTEST_CONFIG_IMPLEMENT
// or main().  All doctest command-line options work, e.g.
//   attograd_tests -tc="matmul*"      run matching test cases only
//   attograd_tests --list-test-cases
//
// After doctest's usual report, the last line printed is
//   float: 12 passed, 0 failed        (or "double: ..." in the double flavor,
//                                      "float_reference: ..." with AG_REFERENCE=1)
// which tools/run_tests.sh reads to add up the results of both flavors and modes.

#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <iostream>

#include "core/blas.hpp"
#include "core/mode.hpp"
#include "core/real.hpp"

namespace {

// Test-case counts of the run, filled in by CountingListener.
unsigned g_passed = 0;
unsigned g_failed = 0;

// A doctest *listener* receives the same events as the console reporter,
// which still prints everything (including failures) as usual.  We only need
// the totals at the end of the run.
struct CountingListener : doctest::IReporter {
  explicit CountingListener(const doctest::ContextOptions&) {}

  void test_run_end(const doctest::TestRunStats& stats) override {
    g_failed = stats.numTestCasesFailed;
    g_passed = stats.numTestCasesPassingFilters - stats.numTestCasesFailed;
  }

  // The other events are not needed.
  void report_query(const doctest::QueryData&) override {}
  void test_run_start() override {}
  void test_case_start(const doctest::TestCaseData&) override {}
  void test_case_reenter(const doctest::TestCaseData&) override {}
  void test_case_end(const doctest::CurrentTestCaseStats&) override {}
  void test_case_exception(const doctest::TestCaseException&) override {}
  void subcase_start(const doctest::SubcaseSignature&) override {}
  void subcase_end() override {}
  void log_assert(const doctest::AssertData&) override {}
  void log_message(const doctest::MessageData&) override {}
  void test_case_skipped(const doctest::TestCaseData&) override {}
};

}  // namespace

REGISTER_LISTENER("attograd_counts", 1, CountingListener);

#if defined(__SANITIZE_ADDRESS__)
// Under AddressSanitizer a request for more memory than it can give ends the
// program by default; the tests check that such a request (a tensor of
// terabytes) is an ag::Error instead, as it is without the sanitizer. With
// this option the allocator returns null, and attograd reports it.
extern "C" const char* __asan_default_options() { return "allocator_may_return_null=1"; }
#endif

int main(int argc, char** argv) {
  std::cout << "attograd tests (" << ag::real_name << ", " << ag::mode_name()
            << " mode), BLAS: " << ag::blas_summary() << std::endl;
  doctest::Context context(argc, argv);
  const int result = context.run();

#ifdef AG_USE_DOUBLE
  const char* const flavor = "double";
#else
  const char* const flavor = "float";
#endif
  std::cout << flavor << (ag::reference_mode() ? "_reference" : "") << ": " << g_passed << " passed, " << g_failed << " failed" << std::endl;

  return (result != 0 || g_failed > 0) ? 1 : 0;
}
