// Running a test body in a child process, for inputs whose failure mode is a
// crash (a stack overflow, a null dereference): the crash then fails one test
// case instead of killing the whole test binary and every result after it.
// POSIX only (fork, pipe).
#pragma once

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.hpp"

namespace ag::testing {

// Runs `body` in a child process and returns "" when it returned 0, else how
// it ended, followed by whatever the child printed on stdout. For tests whose
// failure mode is a crash (a stack overflow, a null dereference): the crash
// then fails this one test case instead of killing the whole test binary and
// every result after it.
inline std::string run_in_child(const std::function<int()>& body) {
  int out[2];
  if (pipe(out) != 0) return "pipe() failed";
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid < 0) return "fork() failed";
  if (pid == 0) {
    // A crash must end the child at once: no doctest crash report (doctest's
    // signal handlers are inherited), nothing printed twice.
    for (int sig : {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL}) std::signal(sig, SIG_DFL);
    close(out[0]);
    dup2(out[1], STDOUT_FILENO);
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull >= 0) dup2(devnull, STDERR_FILENO);
    int code = 99;
    try {
      code = body();
    } catch (const std::exception& e) {
      std::printf("%s", e.what());
      code = 98;
    } catch (...) {
      code = 98;
    }
    std::fflush(nullptr);
    _exit(code);  // no atexit handlers, no doctest report from the child
  }
  close(out[1]);
  std::string printed;
  char buffer[512];
  for (ssize_t n; (n = read(out[0], buffer, sizeof buffer)) > 0;) printed.append(buffer, n);
  close(out[0]);
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return "waitpid() failed";
  std::string outcome;
  if (WIFSIGNALED(status)) {
    outcome = "the child crashed with signal " + std::to_string(WTERMSIG(status));
  } else if (!WIFEXITED(status)) {
    outcome = "the child stopped abnormally";
  } else if (int code = WEXITSTATUS(status); code == 98) {
    outcome = "the child threw an exception";
  } else if (code != 0) {
    outcome = "the child exited with code " + std::to_string(code);
    if (code == 1) outcome += " (what AddressSanitizer uses, e.g. for a stack overflow)";
  }
  if (!outcome.empty() && !printed.empty()) outcome += ": " + printed;
  return outcome;
}

// In a child process: 0 if f throws ag::Error containing every fragment;
// otherwise prints what happened (for run_in_child to report) and returns 2.
inline int expect_error_in_child(const std::function<void()>& f,
                                 const std::vector<std::string>& fragments) {
  try {
    f();
  } catch (const ::ag::Error& e) {
    std::string message = e.what();
    for (const std::string& fragment : fragments)
      if (message.find(fragment) == std::string::npos) {
        std::printf("ag::Error lacks \"%s\": %s", fragment.c_str(), message.c_str());
        return 2;
      }
    return 0;
  }
  std::printf("no ag::Error was thrown");
  return 2;
}

// What a fresh run of this test binary prints (stdout, and stderr unless
// `stdout_only`) with the doctest filter `test_cases`, after `unset` is removed
// from the environment and `env` added; `exit_status` gets its exit status
// (-1: it did not exit).
// For what a process fixes when it starts (the BLAS core, the allocator).
struct FreshRun {
  std::string printed;
  int exit_status = -1;
};
inline FreshRun run_test_binary(const std::string& test_cases,
                                const std::vector<std::pair<std::string, std::string>>& env,
                                const std::vector<std::string>& unset = {},
                                bool stdout_only = false) {
  FreshRun run;
  int out[2];
  if (pipe(out) != 0) return run;
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return run;
  if (pid == 0) {
    close(out[0]);
    dup2(out[1], STDOUT_FILENO);
    if (!stdout_only) dup2(out[1], STDERR_FILENO);
    for (const std::string& name : unset) unsetenv(name.c_str());
    for (const auto& [name, value] : env) setenv(name.c_str(), value.c_str(), 1);
    const std::string filter = "--test-case=" + test_cases;
    execl("/proc/self/exe", "attograd_tests", filter.c_str(), nullptr);
    _exit(127);
  }
  close(out[1]);
  char buffer[4096];
  for (ssize_t n; (n = read(out[0], buffer, sizeof buffer)) > 0;)
    run.printed.append(buffer, size_t(n));
  close(out[0]);
  int status = 0;
  if (waitpid(pid, &status, 0) == pid && WIFEXITED(status)) run.exit_status = WEXITSTATUS(status);
  return run;
}

}  // namespace ag::testing
