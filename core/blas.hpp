// The GEMM wrapper over OpenBLAS, and which OpenBLAS kernels are running.
//
// Why OpenBLAS is loaded with dlopen instead of linked: OpenBLAS picks its
// kernels once, when the library is loaded, from its CPU detection or from the
// OPENBLAS_CORETYPE variable. Debian's OpenBLAS 0.3.21 does not know recent
// CPUs and falls back to slow kernels ("Prescott", ~30 GFLOP/s instead of ~155
// with "SkylakeX" on one core). A linked library is loaded before main() can
// set anything, so attograd loads it itself on first use, after choosing the
// best core type this CPU can run (see choose_core_type in blas.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/real.hpp"

namespace ag {

// C = alpha * op(A) * op(B) + beta * C on contiguous row-major matrices, where
// op(X) is X or X^T. op(A) is (m,k), op(B) is (k,n), C is (m,n). A transposed
// operand is never copied: the transpose flag goes to BLAS, which reads the
// same memory column-wise.
void gemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, real alpha,
          const real* a, const real* b, real beta, real* c);

// The same on sub-matrices of larger row-major arrays: lda, ldb and ldc are the
// distances between the starts of consecutive stored rows (e.g. one attention
// head's d_h columns inside (T, d) rows: ld = d), so no copy cuts them out.
void gemm_strided(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, real alpha,
                  const real* a, int64_t lda, const real* b, int64_t ldb, real beta, real* c,
                  int64_t ldc);

// The benchmark's roofline: while a list is set, every gemm and gemm_strided
// call appends its shape to it, so that the same GEMMs can be timed on their
// own. Off (nullptr) by default; one test of a pointer per call.
struct GemmCall {
  bool transpose_a, transpose_b;
  int64_t m, n, k, lda, ldb, ldc;
  bool accumulate;  // beta != 0: C is read and added to (BLAS skips zeroing it first)
};
void record_gemm_calls(std::vector<GemmCall>* calls);

struct BlasInfo {
  std::string core;    // kernels in use, e.g. "SkylakeX"
  std::string reason;  // why these kernels, e.g. "attograd's choice: the CPU has AVX-512"
  std::string config;  // OpenBLAS's build description
  int threads = 1;
};

// Loads OpenBLAS if needed and says which kernels it runs.
const BlasInfo& blas_info();

// One line for the verbose output of every program:
// "OpenBLAS 0.3.21 ... core SkylakeX (attograd's choice: ...), 1 thread".
std::string blas_summary();

// The core type attograd would pick for this CPU, or "" to leave OpenBLAS's own
// detection. Exposed for tests.
std::string best_core_type_for_this_cpu();

}  // namespace ag
