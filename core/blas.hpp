// The GEMM wrapper over OpenBLAS, and which OpenBLAS kernels are running.
//
// Why OpenBLAS is loaded with dlopen instead of linked: OpenBLAS picks its
// kernels once, when the library is loaded, from its CPU detection or from the
// OPENBLAS_CORETYPE variable. Debian's OpenBLAS 0.3.21 does not know recent
// CPUs and falls back to slow kernels ("Prescott", 15 GFLOP/s instead of ~80
// with "SkylakeX" on one core of a Xeon of 2023). A linked library is loaded
// before main() can set anything, so attograd loads it itself on first use,
// after choosing the core for this CPU by measurement (core/blas_choice.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/real.hpp"

namespace ag {

// C = alpha * op(A) * op(B) + beta * C on contiguous row-major matrices, where
// op(X) is X or X^T. op(A) is (m,k), op(B) is (k,n), C is (m,n). A transposed
// operand is read in place: the transpose flag goes to BLAS, which reads the
// same memory column-wise (fast mode may copy a small one into the form
// OpenBLAS runs fastest, below).
void gemm(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, real alpha,
          const real* a, const real* b, real beta, real* c);

// The same on sub-matrices of larger row-major arrays: lda, ldb and ldc are the
// distances between the starts of consecutive stored rows (e.g. one attention
// head's d_h columns inside (T, d) rows: ld = d), so no copy cuts them out.
void gemm_strided(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k, real alpha,
                  const real* a, int64_t lda, const real* b, int64_t ldb, real beta, real* c,
                  int64_t ldc);

// BLAS takes every size as an int. A GEMM whose m or k is larger is split into
// pieces of at most blas_int_max() rows or terms (each piece's products added
// into C), so a batch of more than 2^31 - 1 rows is still one correct matmul.
// A stored row longer than that (n, or a leading dimension) cannot be split
// and is an ag::Error naming the sizes. Callers that know the user's function
// (matmul, linear) check the row lengths themselves first.
int64_t blas_int_max();
// INT_MAX unless changed; tests lower it to check the split and the refusal on
// small matrices (as if BLAS's int were that small). At least 1.
void set_blas_int_max(int64_t limit);

// Fast mode runs a small A B^T (a batch of 16 or 32 rows times a B of 32 rows
// or more, at most 100^3 multiply-adds) as (A^T)^T B^T from a transposed copy
// of A when OpenBLAS runs its AVX-512 kernels (SkylakeX, Cooperlake), whose
// A B^T small-matrix kernel is up to half the speed of the A^T B^T one at
// these shapes (the rule and its figures in core/blas.cpp). Reference mode
// passes every product to BLAS as it is. set_small_nt_via_tt(-1) leaves
// the choice to the core (the default), 0 turns it off, 1 on (tests run both
// forms on any CPU).
bool small_nt_via_tt();
void set_small_nt_via_tt(int setting);
// Whether gemm(false, true, m, n, k, ...) runs through that copy now (the
// choice above, the mode and the shape).
bool small_nt_runs_as_tt(int64_t m, int64_t n, int64_t k);
// dst (cols, rows) = src (rows, cols; its rows `stride` apart) transposed: the
// tiled copy behind the forms above, for a caller that reuses one B^T across
// many products (an LSTM's W_hh at every step).
void transpose_matrix(const real* src, int64_t rows, int64_t cols, int64_t stride, real* dst);

// Fast mode on the same cores, with one thread, also cuts a product just past
// OpenBLAS's small-matrix bound (100^3 multiply-adds) into pieces within it,
// which run faster than OpenBLAS's packed path at these shapes: A B with n k
// <= 8192, or with beta = 0 and n k <= 16384, into blocks of rows (a linear
// layer's input gradient, (B*T,d) x (d,d)), or, for n <= 64 and n k <= 32768,
// also into stretches of k added up in C; A B^T with n k <= 4096 (16384 for
// n <= 64) the same from a copy of B^T (a linear layer's forward); A^T B with
// m n <= 16384 into stretches of k (its weight gradient). The rule and its
// figures are in core/blas.cpp.
// set_small_kernel_pieces takes -1 (by the core and the threads, the
// default), 0 (off) or 1 (on), as above.
bool small_kernel_pieces();
void set_small_kernel_pieces(int setting);
// How gemm(transpose_a, transpose_b, m, n, k, alpha, a, b, beta, c) is cut
// now: into blocks of `rows` rows of C and stretches of `depth` terms of the
// sum over k, 0 where it is not cut along that side.
struct GemmCut {
  int64_t rows = 0, depth = 0;
  bool cuts() const { return rows > 0 || depth > 0; }
  bool operator==(const GemmCut&) const = default;
};
GemmCut small_kernel_cut(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
                         real beta = 1);

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
  std::string reason;  // why these kernels, e.g. "measured fastest on this CPU (...)"
  std::string config;  // OpenBLAS's build description
  int threads = 1;
};

// Loads OpenBLAS if needed and says which kernels it runs.
const BlasInfo& blas_info();

// One line for the verbose output of every program:
// "OpenBLAS 0.3.21 ... core SkylakeX (measured fastest on this CPU: ...), 1 thread".
std::string blas_summary();

// --- how the core is chosen (core/blas_choice.cpp) -----------------------------------
// No rule of thumb picks the fastest OpenBLAS kernels: on an AMD Zen 4 the
// AVX-512 "SkylakeX" kernels run attograd's GEMMs slower than "Haswell"; on
// an Intel Xeon of 2023 "Haswell" is 3 times slower than "SkylakeX" on small
// GEMMs. So, unless AG_BLAS_CORETYPE names one, attograd times each core this
// CPU can run, each in a child process of its own (OpenBLAS fixes its core
// when it loads), on the GEMM shapes of its own workloads, and keeps the
// fastest. The result is cached per CPU model in
// $XDG_CACHE_HOME/attograd/openblas-cores.tsv (or ~/.cache/...), one line per
// CPU; the first program on a new CPU measures (a fraction of a second).

// What identifies a CPU for the cache, and the instruction sets the cores need.
struct CpuIdentity {
  std::string vendor, brand;  // "GenuineIntel", "Intel(R) Xeon(R) Processor"
  int family = 0, model = 0, stepping = 0;
  bool avx = false, avx2_fma = false, avx512 = false, avx512_bf16 = false;
  // One line of text: vendor, family.model.stepping, the instruction sets,
  // the engine's element type, and the brand string.
  std::string key() const;
};
CpuIdentity this_cpu();

// The OpenBLAS cores worth timing on `cpu`, in order of preference on a tie:
// Cooperlake (AVX-512 with BF16), SkylakeX (AVX-512), Haswell and Zen (AVX2
// and FMA), Sandybridge (AVX). Empty: leave the choice to OpenBLAS.
std::vector<std::string> core_candidates(const CpuIdentity& cpu);

// One core's time on each GEMM shape of the probe (seconds per call).
struct CoreTiming {
  std::string core;
  std::vector<double> seconds;
};
// The fastest: the lowest geometric mean of the times over the shapes (each
// shape counts the same, a toy model's small GEMMs as much as a large one);
// a core later in the list wins only when more than 2% faster (closer is
// noise). Also fills `report` with each core's mean relative to the lowest
// ("Cooperlake 1.00, SkylakeX 1.01, Haswell 1.77").
std::string fastest_core(const std::vector<CoreTiming>& timings, std::string* report = nullptr);

// The cache file (a line per CPU: key, core, OpenBLAS config, report, tab-separated).
// Returns the core cached for `key` ("" if none), with its config and report.
std::string cached_core(const std::string& cache_text, const std::string& key, std::string* config,
                        std::string* report);
// The cache text with `key`'s line set to these values (other lines kept).
std::string with_cached_core(const std::string& cache_text, const std::string& key,
                             const std::string& core, const std::string& config,
                             const std::string& report);
// Where the cache lives: $XDG_CACHE_HOME/attograd/openblas-cores.tsv, else
// $HOME/.cache/attograd/openblas-cores.tsv; "" when neither variable is set.
std::string core_cache_path();

// The choice made before OpenBLAS loads: the core (or "" for OpenBLAS's own
// detection) and why. Called by blas_info(); measures when nothing is cached.
struct CoreChoice {
  std::string core, reason;
  std::string cache_path, cache_key;  // where a measured or cached choice lives
  std::string cached_config;          // the OpenBLAS config it was measured with
};
CoreChoice choose_core();
// Removes the choice's line from the cache (it was measured with another OpenBLAS).
void forget_cached_core(const CoreChoice& choice);

}  // namespace ag
