#include "core/blas.hpp"

#include <cblas.h>
#include <dlfcn.h>

#include <algorithm>
#include <climits>
#include <cstdlib>

#include "core/error.hpp"

namespace ag {

namespace {

// The OpenBLAS entry points attograd uses, looked up after dlopen.
struct OpenBlas {
  decltype(&cblas_sgemm) sgemm = nullptr;
  decltype(&cblas_dgemm) dgemm = nullptr;
  BlasInfo info;
};

template <typename F>
F symbol(void* library, const char* name) {
  void* address = dlsym(library, name);
  AG_CHECK(address != nullptr, "blas: libopenblas.so.0 has no symbol {}", name);
  return reinterpret_cast<F>(address);
}

OpenBlas load_openblas() {
  OpenBlas blas;
  // Which kernels: AG_BLAS_CORETYPE forces a core by name; otherwise the core
  // measured fastest on this CPU (core/blas_choice.cpp). OPENBLAS_CORETYPE
  // inherited from the environment is replaced by that choice (and the
  // replacement is reported), because an outdated value silently costs half the speed.
  const char* inherited = std::getenv("OPENBLAS_CORETYPE");
  const std::string inherited_core = inherited ? inherited : "";
  // If something linked OpenBLAS into the program (-lopenblas), it was loaded
  // and chose its kernels before main(): there is nothing to choose (or time).
  void* early = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_NOLOAD);
  if (early) dlclose(early);
  const CoreChoice choice = early ? CoreChoice() : choose_core();
  if (!choice.core.empty()) {
    setenv("OPENBLAS_CORETYPE", choice.core.c_str(), 1);
    blas.info.reason = choice.reason;
    if (!inherited_core.empty() && choice.core != inherited_core)
      blas.info.reason += fmt::format("; replaced OPENBLAS_CORETYPE={}", inherited_core);
  } else {
    blas.info.reason =
        !inherited_core.empty() ? "OPENBLAS_CORETYPE from the environment" : choice.reason;
  }
  // One thread unless AG_NUM_THREADS says otherwise: toy models are small, and
  // benchmark figures should not depend on how busy the other core is.
  const char* threads_env = std::getenv("AG_NUM_THREADS");
  int threads = threads_env && *threads_env ? std::atoi(threads_env) : 1;
  AG_CHECK(threads >= 1, "blas: AG_NUM_THREADS must be a positive number, got '{}'", threads_env);
  setenv("OPENBLAS_NUM_THREADS", std::to_string(threads).c_str(), 1);

  if (early)
    blas.info.reason =
        "OpenBLAS was loaded before attograd could choose (is the program linked with "
        "-lopenblas?): its own choice";
  void* library = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
  AG_CHECK(library != nullptr,
           "blas: cannot load libopenblas.so.0 ({}); install it with: apt-get install libopenblas0",
           dlerror());
  blas.sgemm = symbol<decltype(&cblas_sgemm)>(library, "cblas_sgemm");
  blas.dgemm = symbol<decltype(&cblas_dgemm)>(library, "cblas_dgemm");
  blas.info.core = symbol<char* (*)()>(library, "openblas_get_corename")();
  blas.info.config = symbol<char* (*)()>(library, "openblas_get_config")();
  symbol<void (*)(int)>(library, "openblas_set_num_threads")(threads);  // even if loaded early
  blas.info.threads = symbol<int (*)()>(library, "openblas_get_num_threads")();
  // A cached choice measured with another OpenBLAS build: measure again next time.
  if (!choice.cached_config.empty() && choice.cached_config != blas.info.config) {
    forget_cached_core(choice);
    blas.info.reason += "; measured with another OpenBLAS build, so measured again next time";
  }
  return blas;
}

const OpenBlas& openblas() {
  static const OpenBlas blas = load_openblas();
  return blas;
}

}  // namespace

const BlasInfo& blas_info() { return openblas().info; }

std::string blas_summary() {
  const BlasInfo& info = blas_info();
  return fmt::format("{}; core {} ({}), {} thread{}", info.config, info.core, info.reason,
                     info.threads, info.threads == 1 ? "" : "s");
}

namespace {
std::vector<GemmCall>* recorded_calls = nullptr;
int64_t int_max = INT_MAX;  // blas_int_max()

// One BLAS call, every size already known to fit an int.
void call_blas(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, real alpha,
               const real* a, int64_t lda, const real* b, int64_t ldb, real beta, real* c,
               int64_t ldc) {
  CBLAS_TRANSPOSE ta = transpose_a ? CblasTrans : CblasNoTrans;
  CBLAS_TRANSPOSE tb = transpose_b ? CblasTrans : CblasNoTrans;
#ifdef AG_USE_DOUBLE
  openblas().dgemm(CblasRowMajor, ta, tb, int(m), int(n), int(k), alpha, a, int(lda), b, int(ldb),
                   beta, c, int(ldc));
#else
  openblas().sgemm(CblasRowMajor, ta, tb, int(m), int(n), int(k), alpha, a, int(lda), b, int(ldb),
                   beta, c, int(ldc));
#endif
}
}  // namespace

int64_t blas_int_max() { return int_max; }

void set_blas_int_max(int64_t limit) {
  AG_CHECK(limit >= 1 && limit <= INT_MAX, "set_blas_int_max: limit {} is outside 1..{}", limit,
           INT_MAX);
  int_max = limit;
}

void record_gemm_calls(std::vector<GemmCall>* calls) { recorded_calls = calls; }

void gemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, real alpha,
          const real* a, const real* b, real beta, real* c) {
  // Leading dimensions of the stored (untransposed) row-major matrices (at least 1).
  const int64_t lda = std::max<int64_t>(transpose_a ? m : k, 1);
  const int64_t ldb = std::max<int64_t>(transpose_b ? k : n, 1);
  gemm_strided(transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb, beta, c, n);
}

void gemm_strided(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, real alpha,
                  const real* a, int64_t lda, const real* b, int64_t ldb, real beta, real* c,
                  int64_t ldc) {
  if (m == 0 || n == 0) return;
  const int64_t limit = int_max;
  // A stored row is read whole by one call: its length cannot be split.
  AG_CHECK(n <= limit && lda <= limit && ldb <= limit && ldc <= limit,
           "gemm: ({},{}) x ({},{}) has a stored row of {} elements (n {}, leading dimensions {}, "
           "{}, {}), past BLAS's int limit {}",
           m, k, k, n, std::max({n, lda, ldb, ldc}), n, lda, ldb, ldc, limit);
  if (recorded_calls)
    recorded_calls->push_back({transpose_a, transpose_b, m, n, k, lda, ldb, ldc, beta != 0});
  if (m <= limit && k <= limit) {  // the usual case: one call
    call_blas(transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  // C = alpha op(A) op(B) + beta C, rows i.. of C from rows i.. of op(A), and the
  // sum over k in stretches p.. added up in C (beta for the first, then 1).
  for (int64_t i = 0; i < m; i += limit) {
    const int64_t rows = std::min(limit, m - i);
    int64_t p = 0;
    do {
      const int64_t depth = std::min(limit, k - p);
      // op(A)[i, p] is A[i, p] stored (m,k), or A[p, i] stored (k,m) when transposed
      const real* a_piece = transpose_a ? a + p * lda + i : a + i * lda + p;
      // op(B)[p, 0] is B[p, 0] stored (k,n), or B[0, p] stored (n,k) when transposed
      const real* b_piece = transpose_b ? b + p : b + p * ldb;
      call_blas(transpose_a, transpose_b, rows, n, depth, alpha, a_piece, lda, b_piece, ldb,
                p == 0 ? beta : real(1), c + i * ldc, ldc);
      p += depth;
    } while (p < k);
  }
}

}  // namespace ag
