// Which OpenBLAS core (set of kernels) attograd loads: forced by
// AG_BLAS_CORETYPE, else the fastest of the cores this CPU can run, measured
// once per CPU model and cached (why not by a rule: core/blas.hpp).
//
// OpenBLAS fixes its core when it is loaded, so each candidate is timed in a
// child process of its own: fork, set OPENBLAS_CORETYPE, dlopen OpenBLAS, time
// the GEMMs. The children run side by side and take turns, round after round,
// so that a burst of load from another program hits every candidate alike;
// each shape keeps its best round.
#include <cblas.h>
#include <dlfcn.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/blas.hpp"
#include "core/error.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace ag {

// --- the CPU -------------------------------------------------------------------------

std::string CpuIdentity::key() const {
  std::string sets = avx512_bf16 ? "avx512-bf16"
                     : avx512    ? "avx512"
                     : avx2_fma  ? "avx2"
                     : avx       ? "avx"
                                 : "sse";
  std::string clean_brand = brand;
  std::replace_if(
      clean_brand.begin(), clean_brand.end(),
      [](char c) { return c == '\t' || c == '\n' || c == '\r'; }, ' ');
  return fmt::format("{} {}.{}.{} {} {} {}", vendor, family, model, stepping, sets, real_name,
                     clean_brand);
}

CpuIdentity this_cpu() {
  CpuIdentity cpu;
#if defined(__x86_64__) || defined(__i386__)  // elsewhere: no candidates, OpenBLAS decides
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid(0, &a, &b, &c, &d)) {
    char vendor[13] = {};
    std::memcpy(vendor, &b, 4);
    std::memcpy(vendor + 4, &d, 4);
    std::memcpy(vendor + 8, &c, 4);
    cpu.vendor = vendor;
  }
  if (__get_cpuid(1, &a, &b, &c, &d)) {
    const int base_family = (a >> 8) & 0xf, base_model = (a >> 4) & 0xf;
    cpu.family = base_family == 0xf ? base_family + int((a >> 20) & 0xff) : base_family;
    cpu.model =
        base_family == 0x6 || base_family == 0xf ? base_model + int((a >> 12) & 0xf0) : base_model;
    cpu.stepping = a & 0xf;
  }
  char brand[49] = {};
  for (unsigned leaf = 0; leaf < 3; ++leaf)
    if (__get_cpuid(0x80000002 + leaf, &a, &b, &c, &d)) {
      unsigned words[4] = {a, b, c, d};
      std::memcpy(brand + 16 * leaf, words, 16);
    }
  cpu.brand = brand;
  cpu.brand.erase(0, cpu.brand.find_first_not_of(' '));
  // __builtin_cpu_supports also checks that the OS saves the registers (XCR0),
  // so a CPU whose OS disabled AVX-512 is not sent to kernels that would die
  // with SIGILL.
  __builtin_cpu_init();
  cpu.avx = __builtin_cpu_supports("avx");
  cpu.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  // The AVX-512 subsets OpenBLAS's SkylakeX kernels use; Cooperlake adds BF16.
  cpu.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512cd") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512vl");
  cpu.avx512_bf16 = cpu.avx512 && __builtin_cpu_supports("avx512bf16");
#endif
  return cpu;
}

std::vector<std::string> core_candidates(const CpuIdentity& cpu) {
  std::vector<std::string> cores;
  if (cpu.avx512_bf16) cores.push_back("Cooperlake");
  if (cpu.avx512) cores.push_back("SkylakeX");
  if (cpu.avx2_fma) {
    cores.push_back("Haswell");
    cores.push_back("Zen");
  }
  if (cpu.avx) cores.push_back("Sandybridge");
  return cores;
}

// --- the choice among measured cores -------------------------------------------------

std::string fastest_core(const std::vector<CoreTiming>& timings, std::string* report) {
  // log of the geometric mean of each core's times
  std::vector<double> mean_log;
  for (const CoreTiming& t : timings) {
    double sum = 0;
    for (double s : t.seconds) sum += std::log(s);
    mean_log.push_back(t.seconds.empty() ? INFINITY : sum / double(t.seconds.size()));
  }
  // A later core must be more than 2% faster to win: closer is noise.
  size_t best = 0;
  for (size_t i = 1; i < timings.size(); ++i)
    if (mean_log[i] < mean_log[best] - std::log(1.02)) best = i;
  if (report) {
    report->clear();
    const double fastest = *std::min_element(mean_log.begin(), mean_log.end());
    for (size_t i = 0; i < timings.size(); ++i)
      *report += fmt::format("{}{} {:.2f}", i ? ", " : "", timings[i].core,
                             std::exp(mean_log[i] - fastest));
  }
  return timings.empty() ? "" : timings[best].core;
}

// --- the cache file ------------------------------------------------------------------

namespace {

constexpr const char* cache_header =
    "# The OpenBLAS core attograd measured fastest on each CPU (core/blas_choice.cpp):\n"
    "# CPU, core, OpenBLAS build, each core's mean time relative to the fastest.\n"
    "# Delete a line (or this file) to measure again; AG_BLAS_CORETYPE=<core> overrides it.\n";

std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(text);
  while (std::getline(in, part, separator)) parts.push_back(part);
  return parts;
}

}  // namespace

std::string cached_core(const std::string& cache_text, const std::string& key, std::string* config,
                        std::string* report) {
  for (const std::string& line : split(cache_text, '\n')) {
    const std::vector<std::string> fields = split(line, '\t');
    if (line.empty() || line[0] == '#' || fields.size() != 4 || fields[0] != key ||
        fields[1].empty())
      continue;
    if (config) *config = fields[2];
    if (report) *report = fields[3];
    return fields[1];
  }
  return "";
}

std::string with_cached_core(const std::string& cache_text, const std::string& key,
                             const std::string& core, const std::string& config,
                             const std::string& report) {
  std::string out = cache_header;
  for (const std::string& line : split(cache_text, '\n'))
    if (!line.empty() && line[0] != '#' && split(line, '\t')[0] != key) out += line + "\n";
  if (!core.empty()) out += fmt::format("{}\t{}\t{}\t{}\n", key, core, config, report);
  return out;
}

std::string core_cache_path() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  std::string dir = xdg && *xdg ? xdg : home && *home ? std::string(home) + "/.cache" : "";
  return dir.empty() ? "" : dir + "/attograd/openblas-cores.tsv";
}

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Writes the cache to a temporary file and renames it into place (so a
// reader never sees half a file). Returns "" or what went wrong.
std::string write_cache(const std::string& path, const std::string& text) {
  const std::string dir = path.substr(0, path.rfind('/'));
  const std::string parent = dir.substr(0, dir.rfind('/'));
  mkdir(parent.c_str(), 0755);  // ~/.cache may not exist yet
  mkdir(dir.c_str(), 0755);
  const std::string temporary = fmt::format("{}.{}.tmp", path, getpid());
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << text;
    if (!out.flush()) return fmt::format("cannot write {}", temporary);
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    std::remove(temporary.c_str());
    return fmt::format("cannot rename {} to {}", temporary, path);
  }
  return "";
}

// --- the measurement -----------------------------------------------------------------

// The GEMM shapes timed, from attograd's own workloads.
struct Shape3 {
  int m, n, k;
  bool transpose_a, transpose_b;
};
constexpr Shape3 probe_shapes[] = {
    {256, 256, 512, false, false},  // a large layer's forward
    {512, 256, 256, true, false},   // its weight gradient
    {1024, 64, 64, false, true},    // a transformer's projection, 32 x 32 tokens
    {1024, 256, 64, false, true},   // its feed-forward layer
    {32, 256, 96, false, true},     // an LSTM step's gates, batch 32
    {256, 96, 32, true, false},     // their weight gradient
    {300, 128, 2, false, true},     // the first layer on 2-D points
    {300, 3, 128, false, true},     // a 3-class output layer
};
constexpr int shape_count = sizeof(probe_shapes) / sizeof(probe_shapes[0]);
constexpr int rounds = 4;

struct ChildHello {
  char core[64];  // what OpenBLAS says it runs (empty: it did not load)
  char config[256];
};

// The child: load OpenBLAS with `core`, say which core it runs, then on each
// 'r' time one round of every shape and send the seconds per call.
[[noreturn]] void run_child(const std::string& core, int commands, int results) {
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) signal(sig, SIG_DFL);
  setenv("OPENBLAS_CORETYPE", core.c_str(), 1);
  setenv("OPENBLAS_NUM_THREADS", "1", 1);
  ChildHello hello = {};
  void* library = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
  auto corename =
      library ? reinterpret_cast<char* (*)()>(dlsym(library, "openblas_get_corename")) : nullptr;
  auto config =
      library ? reinterpret_cast<char* (*)()>(dlsym(library, "openblas_get_config")) : nullptr;
#ifdef AG_USE_DOUBLE
  auto gemm =
      library ? reinterpret_cast<decltype(&cblas_dgemm)>(dlsym(library, "cblas_dgemm")) : nullptr;
#else
  auto gemm =
      library ? reinterpret_cast<decltype(&cblas_sgemm)>(dlsym(library, "cblas_sgemm")) : nullptr;
#endif
  if (corename && config && gemm) {
    std::snprintf(hello.core, sizeof hello.core, "%s", corename());
    std::snprintf(hello.config, sizeof hello.config, "%s", config());
  }
  if (write(results, &hello, sizeof hello) != sizeof hello || hello.core[0] == 0) _exit(1);
  size_t biggest = 0;
  for (const Shape3& s : probe_shapes)
    biggest = std::max({biggest, size_t(s.m) * s.k, size_t(s.k) * s.n, size_t(s.m) * s.n});
  std::vector<real> a(biggest, real(0.01)), b(biggest, real(0.02)), c(biggest, 0);
  char command = 0;
  while (read(commands, &command, 1) == 1 && command == 'r') {
    double seconds[shape_count];
    for (int i = 0; i < shape_count; ++i) {
      const Shape3& s = probe_shapes[i];
      const int calls = std::max(1, int(4e6 / (2.0 * s.m * s.n * s.k)));
      auto call = [&] {
        gemm(CblasRowMajor, s.transpose_a ? CblasTrans : CblasNoTrans,
             s.transpose_b ? CblasTrans : CblasNoTrans, s.m, s.n, s.k, 1, a.data(),
             s.transpose_a ? s.m : s.k, b.data(), s.transpose_b ? s.k : s.n, 0, c.data(), s.n);
      };
      call();  // warm: the buffers in cache, the kernels' code in memory
      const auto start = std::chrono::steady_clock::now();
      for (int j = 0; j < calls; ++j) call();
      seconds[i] =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / calls;
    }
    if (write(results, seconds, sizeof seconds) != sizeof seconds) break;
  }
  _exit(0);
}

// Reads exactly n bytes, waiting at most 30 s.
bool read_all(int fd, void* buffer, size_t n) {
  char* p = static_cast<char*>(buffer);
  while (n > 0) {
    pollfd ready = {fd, POLLIN, 0};
    if (poll(&ready, 1, 30000) != 1) return false;
    const ssize_t got = read(fd, p, n);
    if (got <= 0) return false;
    p += got;
    n -= size_t(got);
  }
  return true;
}

struct Child {
  std::string core, config;  // as OpenBLAS names them
  pid_t pid = -1;
  int commands = -1, results = -1;
  CoreTiming timing;
};

void end_child(Child& child) {
  if (child.pid < 0) return;
  close(child.commands);  // the child reads EOF and exits
  close(child.results);
  int status = 0;
  if (waitpid(child.pid, &status, 0) != child.pid) kill(child.pid, SIGKILL);
  child.pid = -1;
}

// Times each core in a child process; drops the cores that fail to load and
// the names OpenBLAS maps to a core already timed. `configs` gets OpenBLAS's
// description of its build with each core.
std::vector<CoreTiming> time_cores(const std::vector<std::string>& cores,
                                   std::vector<std::string>* configs) {
  std::vector<Child> started;
  std::fflush(nullptr);                    // nothing buffered is written twice
  for (const std::string& core : cores) {  // all at once: they load OpenBLAS side by side
    int commands[2], results[2];
    if (pipe(commands) != 0) break;
    if (pipe(results) != 0) {
      close(commands[0]);
      close(commands[1]);
      break;
    }
    const pid_t pid = fork();
    if (pid == 0) {
      close(commands[1]);
      close(results[0]);
      for (const Child& other : started) {
        close(other.commands);
        close(other.results);
      }
      run_child(core, commands[0], results[1]);
    }
    close(commands[0]);
    close(results[1]);
    Child child;
    child.pid = pid;
    child.commands = commands[1];
    child.results = results[0];
    if (pid < 0) {
      close(child.commands);
      close(child.results);
      break;
    }
    started.push_back(child);
  }
  std::vector<Child> children;
  for (Child& child : started) {
    ChildHello hello = {};
    const bool loaded = read_all(child.results, &hello, sizeof hello) && hello.core[0];
    const bool seen = std::any_of(children.begin(), children.end(),
                                  [&](const Child& c) { return c.core == hello.core; });
    if (!loaded || seen) {
      end_child(child);
      continue;
    }
    child.core = hello.core;
    child.config = hello.config;
    child.timing = {child.core, std::vector<double>(shape_count, INFINITY)};
    children.push_back(child);
  }
  // A child that died makes write fail instead of ending the program (SIGPIPE).
  struct sigaction ignore = {}, before = {};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGPIPE, &ignore, &before);
  for (int round = 0; round < rounds; ++round)
    for (Child& child : children) {
      double seconds[shape_count];
      const char go = 'r';
      if (child.pid < 0) continue;
      if (write(child.commands, &go, 1) != 1 || !read_all(child.results, seconds, sizeof seconds)) {
        end_child(child);  // crashed or hung: left out
        child.timing.seconds.clear();
        continue;
      }
      for (int i = 0; i < shape_count; ++i)
        child.timing.seconds[i] = std::min(child.timing.seconds[i], seconds[i]);
    }
  std::vector<CoreTiming> timings;
  for (Child& child : children) {
    end_child(child);
    if (child.timing.seconds.empty()) continue;
    timings.push_back(child.timing);
    configs->push_back(child.config);
  }
  sigaction(SIGPIPE, &before, nullptr);
  return timings;
}

// Whether this process runs one thread: only then may a child process made by
// fork() load a library (another thread could hold a lock the child needs).
bool single_threaded() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);)
    if (line.rfind("Threads:", 0) == 0) return std::atoi(line.c_str() + 8) == 1;
  return false;
}

}  // namespace

CoreChoice choose_core() {
  CoreChoice choice;
  const char* forced = std::getenv("AG_BLAS_CORETYPE");
  if (forced && *forced) {
    choice.core = forced;
    choice.reason = fmt::format("forced by AG_BLAS_CORETYPE={}", forced);
    return choice;
  }
  const CpuIdentity cpu = this_cpu();
  const std::vector<std::string> candidates = core_candidates(cpu);
  if (candidates.empty()) {
    choice.reason = "OpenBLAS's own CPU detection (this CPU has no AVX)";
    return choice;
  }
  choice.cache_key = cpu.key();
  choice.cache_path = core_cache_path();
  const std::string cache_text = choice.cache_path.empty() ? "" : read_text(choice.cache_path);
  std::string report;
  choice.core = cached_core(cache_text, choice.cache_key, &choice.cached_config, &report);
  if (!choice.core.empty()) {
    choice.reason =
        fmt::format("measured fastest on this CPU ({}), cached in {}", report, choice.cache_path);
    return choice;
  }
  if (!single_threaded()) {
    choice.core = candidates.front();
    choice.reason = fmt::format(
        "the widest vector kernels this CPU runs, not measured: the program already runs several "
        "threads when it first multiplies matrices, and only a single-threaded one forks to time "
        "the cores");
    return choice;
  }
  std::vector<std::string> configs;
  const std::vector<CoreTiming> timings = time_cores(candidates, &configs);
  if (timings.empty()) {
    choice.core = "";
    choice.reason = "OpenBLAS's own CPU detection (timing the cores in child processes failed)";
    return choice;
  }
  choice.core = fastest_core(timings, &report);
  for (size_t i = 0; i < timings.size(); ++i)
    if (timings[i].core == choice.core) choice.cached_config = configs[i];
  choice.reason = fmt::format(
      "measured fastest on this CPU ({}; mean time over {} GEMM shapes, "
      "relative to the fastest)",
      report, shape_count);
  const std::string failure =
      choice.cache_path.empty()
          ? "neither XDG_CACHE_HOME nor HOME is set"
          : write_cache(choice.cache_path,
                        with_cached_core(cache_text, choice.cache_key, choice.core,
                                         choice.cached_config, report));
  choice.reason += failure.empty() ? fmt::format(", cached in {}", choice.cache_path)
                                   : fmt::format("; not cached: {}", failure);
  return choice;
}

void forget_cached_core(const CoreChoice& choice) {
  if (choice.cache_path.empty()) return;
  write_cache(choice.cache_path,
              with_cached_core(read_text(choice.cache_path), choice.cache_key, "", "", ""));
}

}  // namespace ag
