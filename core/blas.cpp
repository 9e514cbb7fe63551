#include "core/blas.hpp"

#include <cblas.h>
#include <dlfcn.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/error.hpp"
#include "core/mode.hpp"
#include "core/simd.hpp"

namespace ag {

namespace {

// The OpenBLAS entry points attograd uses, looked up after dlopen.
struct OpenBlas {
  decltype(&cblas_sgemm) sgemm = nullptr;
  decltype(&cblas_dgemm) dgemm = nullptr;
  BlasInfo info;
  bool avx512_small_kernels = false;  // the core is SkylakeX or Cooperlake
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
  blas.avx512_small_kernels = blas.info.core == "SkylakeX" || blas.info.core == "Cooperlake";
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
int64_t int_max = INT_MAX;      // blas_int_max()
int small_nt_setting = -1;      // set_small_nt_via_tt(): -1 = by the core, 0 = off, 1 = on
int small_pieces_setting = -1;  // set_small_kernel_pieces(): the same

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

// --- fast twin: a small A B^T as (A^T)^T B^T -----------------------------------------
// OpenBLAS runs products of at most 100^3 multiply-adds through its small-matrix
// kernels, and on its AVX-512 cores (SkylakeX, Cooperlake) the kernel for a
// row-major A B^T runs far slower than the one for A^T B^T at the shapes of a
// batch of 16 or 32 rows: x W^T in every linear layer's forward, each step of
// a recurrent layer and of a decoder, an attention head's Q K^T. Their AVX2
// cores (Haswell, Zen) run both forms at the same speed, so there the product
// goes to BLAS as it is.
//
// Through gemm, A B^T / A^T B^T with the copy of A, microseconds, on the Xeon
// of docs/performance.md (m, n, k: A (m,k), B (n,k)):
//   wins   (32,64,64) 5.6 / 4.4   (32,256,64) 13.1 / 8.1   (32,256,96) 19.5 / 11.7
//          (32,64,256) 14.2 / 8.5   (16,256,32) 4.8 / 3.1   (32,32,16) 0.62 / 0.52
//   loses  (32,10,64) 0.65 / 0.85 (the copy outweighs a narrow B)
//          (32,32,256) 7.0 / 8.2  (the same, a long k for n = 32)
//          (24,64,64) 3.6 / 4.0, (64,32,128) 6.1 / 6.4, (8,8,64) 0.18 / 0.33
//          (m off 16 and 32: the A^T B^T kernel's edges)
// so the copy is made for m = 16 or 32, k >= 16, and n >= 64, or n >= 32
// with k <= 128; and only while the product stays in the small kernels and A
// (at most 8192 numbers, 32 KiB of floats) in L1, where copying it costs
// 0.13 ns a number (2 to 3 times that beyond).
constexpr double small_kernel_limit = 1e6;  // m n k, OpenBLAS 0.3's small-matrix bound
constexpr int64_t copied_a_limit = 8192;

// dst (cols, rows) = src (rows, cols; row stride `stride`) transposed: a tile
// of 8 x 8 at a time, each read as 8 rows and written as 8 columns through
// three rounds of shuffles (pairs of numbers, pairs of pairs, halves), then
// the last rows % 8 rows and cols % 8 columns one number at a time. 3 times
// the speed of the two plain loops.
AG_SIMD_CLONES void transpose_into(const real* src, int64_t rows, int64_t cols, int64_t stride,
                                   real* dst) noexcept {
  using Row8 = real __attribute__((vector_size(8 * sizeof(real))));
  const int64_t tiled_rows = rows - rows % 8, tiled_cols = cols - cols % 8;
  for (int64_t c0 = 0; c0 < tiled_cols; c0 += 8) {
    for (int64_t r0 = 0; r0 < tiled_rows; r0 += 8) {
      Row8 r[8], t[8], u[8];
      for (int i = 0; i < 8; ++i) std::memcpy(&r[i], src + (r0 + i) * stride + c0, sizeof(Row8));
      for (int i = 0; i < 8; i += 2) {  // t: rows i and i+1 interleaved in pairs of numbers
        t[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
      }
      for (int i = 0; i < 8; i += 4)  // u: pairs of t's pairs, columns 4 apart in each half
        for (int j = 0; j < 2; ++j) {
          u[i + 2 * j] = __builtin_shufflevector(t[i + j], t[i + j + 2], 0, 1, 8, 9, 4, 5, 12, 13);
          u[i + 2 * j + 1] =
              __builtin_shufflevector(t[i + j], t[i + j + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        }
      real* d = dst + c0 * rows + r0;
      for (int j = 0; j < 4; ++j) {  // column j from the low halves, column j+4 from the high
        const Row8 low = __builtin_shufflevector(u[j], u[j + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        const Row8 high = __builtin_shufflevector(u[j], u[j + 4], 4, 5, 6, 7, 12, 13, 14, 15);
        std::memcpy(d + j * rows, &low, sizeof(Row8));
        std::memcpy(d + (j + 4) * rows, &high, sizeof(Row8));
      }
    }
  }
  for (int64_t r = tiled_rows; r < rows; ++r)
    for (int64_t c = 0; c < tiled_cols; ++c) dst[c * rows + r] = src[r * stride + c];
  for (int64_t c = tiled_cols; c < cols; ++c)
    for (int64_t r = 0; r < rows; ++r) dst[c * rows + r] = src[r * stride + c];
}

// C = alpha A B^T + beta C as (A^T)^T B^T, A^T copied into a buffer kept per thread.
void call_blas_nt_as_tt(int64_t m, int64_t n, int64_t k, real alpha, const real* a, int64_t lda,
                        const real* b, int64_t ldb, real beta, real* c, int64_t ldc) {
  thread_local std::vector<real> a_transposed;
  a_transposed.resize(static_cast<size_t>(m * k));
  transpose_into(a, m, k, lda, a_transposed.data());
  call_blas(true, true, m, n, k, alpha, a_transposed.data(), std::max<int64_t>(m, 1), b, ldb, beta,
            c, ldc);
}

// --- fast twin: a product just past the small kernels, in pieces within them ----------
// Past 100^3 multiply-adds OpenBLAS packs both operands into its blocked
// layout first. For a product whose n (A B) or whose C (A^T B) is small,
// packing is a large share of the work, and on the AVX-512 cores the same
// product cut into pieces that each stay in the small kernels runs faster
// (microseconds, whole -> in pieces; m, n, k as in gemm; sgemm on the Xeon of
// docs/performance.md):
//   A B with n k <= 8192, cut into blocks of rows (each piece: rows x n x k):
//     (1024,64,64) 70 -> 52 (blocks of 128)   (384,32,256) 56 -> 39 (64)
//     (1024,128,64) 126 -> 107 (64)           (300,128,64) 37 -> 31 (64)
//   A B with beta = 0 and n k <= 16384, the same: past the small kernels
//   OpenBLAS first clears C in a pass of its own, while the small kernels'
//   pieces write C without reading it (eight sets of operands in turn, so
//   that C is not in cache, as a new gradient's is not):
//     (1024,256,64) 364 -> 307 (blocks of 32)   (1024,192,64) 199 -> 156
//     (384,256,64) 101 -> 82   (1024,1024,16) 498 -> 311
//     but (1024,512,64) 512 -> 507 and (1024,256,128) 473 -> 472 (n k = 32768),
//     and with beta = 1, (1024,256,64) 240 -> 331
//   A B with n <= 64 and 8192 < n k <= 32768, also cut along k into
//   stretches (the largest power of two with n x stretch <= 8192), added up in C:
//     (1024,64,256) 251 -> 205   (1024,32,512) 306 -> 234   (1024,16,1024) 439 -> 336
//     (1024,64,512) 509 -> 436   (384,64,256) 94 -> 77
//     but (1024,64,4096) 4361 -> 5005
//   A B^T with n k <= 4096, or n <= 64 and n k <= 16384, B^T copied (n k
//   numbers, 64 KiB of floats at most), then as A B:
//     (1024,64,64) 63 -> 52   (1024,32,64) 42 -> 27   (384,16,128) 20 -> 14
//     (200,64,64) 15 -> 13   (1024,64,256) 248 -> 205   (2048,64,128) 248 -> 201
//     but (384,256,32) 45 -> 47
//   A^T B with m n <= 16384, the sum over k cut into stretches added up in C:
//     (64,64,1024) 72 -> 53 (stretches of 64)   (256,64,384) 125 -> 80 (32)
//     (256,32,384) 77 -> 44 (32)   (64,256,1024) 265 -> 237 (32)   (128,128,1024) 248 -> 222
//     and a small C too: (16,16,4096) 31 -> 20, (8,8,20000) 99 -> 87
//     but (256,128,1024) 459 -> 487: a C past 16384 numbers loses
//   A^T B^T: not cut (no product of the engine's has this form at these sizes).
// Blocks of rows are the largest power of two whose piece has at most 2^19
// multiply-adds, half the bound (128 rows of (1024,64,64); pieces of more rows
// pay for a narrower B: (100000,4,4) 320 -> 171 in blocks of 128, 161 of 1024);
// stretches of k for A^T B are 64 (a C of at most 4096 numbers) or 32. With
// more than one thread (AG_NUM_THREADS) nothing is cut: OpenBLAS shares a
// product past its small kernels among the threads, and a piece runs on one.
constexpr int64_t pieces_nk_limit = 8192;                // A B: n k of a piece
constexpr int64_t pieces_narrow_n = 64;                  // a narrow B: n <= 64
constexpr int64_t pieces_narrow_nk_limit = 32768;        // A B, a narrow B cut along k
constexpr int64_t pieces_cleared_nk_limit = 16384;       // A B with beta = 0
constexpr int64_t pieces_copied_b_limit = 4096;          // A B^T: n k, the copy of B
constexpr int64_t pieces_copied_narrow_b_limit = 16384;  // the same for a narrow B
constexpr int64_t pieces_mn_limit = 16384;               // A^T B: m n
constexpr double piece_budget = 524288;                  // 2^19 multiply-adds in a block of rows

// C = alpha op(A) B + beta C, op(A) = A or A^T, in pieces of cut.rows rows of C
// and cut.depth terms of the sum over k (0: whole), each stretch of k added up
// in C (beta for the first).
void call_blas_in_pieces(bool transpose_a, GemmCut cut, int64_t m, int64_t n, int64_t k, real alpha,
                         const real* a, int64_t lda, const real* b, int64_t ldb, real beta, real* c,
                         int64_t ldc) {
  const int64_t rows = cut.rows > 0 ? cut.rows : m, depth = cut.depth > 0 ? cut.depth : k;
  for (int64_t p = 0; p < k; p += depth)
    for (int64_t i = 0; i < m; i += rows) {
      // op(A)[i, p] is A[i, p] stored (m,k), or A[p, i] stored (k,m) when transposed
      const real* a_piece = transpose_a ? a + p * lda + i : a + i * lda + p;
      call_blas(transpose_a, false, std::min(rows, m - i), n, std::min(depth, k - p), alpha,
                a_piece, lda, b + p * ldb, ldb, p == 0 ? beta : real(1), c + i * ldc, ldc);
    }
}

// C = alpha A B^T + beta C as A (B^T) in pieces, B^T copied into a buffer kept
// per thread.
void call_blas_nt_in_pieces(GemmCut cut, int64_t m, int64_t n, int64_t k, real alpha, const real* a,
                            int64_t lda, const real* b, int64_t ldb, real beta, real* c,
                            int64_t ldc) {
  thread_local std::vector<real> b_transposed;
  b_transposed.resize(static_cast<size_t>(n * k));
  transpose_into(b, n, k, ldb, b_transposed.data());
  call_blas_in_pieces(false, cut, m, n, k, alpha, a, lda, b_transposed.data(), n, beta, c, ldc);
}

}  // namespace

int64_t blas_int_max() { return int_max; }

void set_blas_int_max(int64_t limit) {
  AG_CHECK(limit >= 1 && limit <= INT_MAX, "set_blas_int_max: limit {} is outside 1..{}", limit,
           INT_MAX);
  int_max = limit;
}

void record_gemm_calls(std::vector<GemmCall>* calls) { recorded_calls = calls; }

bool small_nt_via_tt() {
  return small_nt_setting < 0 ? openblas().avx512_small_kernels : small_nt_setting == 1;
}

void transpose_matrix(const real* src, int64_t rows, int64_t cols, int64_t stride, real* dst) {
  transpose_into(src, rows, cols, stride, dst);
}

bool small_nt_runs_as_tt(int64_t m, int64_t n, int64_t k) {
  const bool shape_gains = (m == 16 || m == 32) && k >= 16 && (n >= 64 || (n >= 32 && k <= 128));
  return shape_gains && small_nt_via_tt() && !reference_mode() && m * k <= copied_a_limit &&
         double(m) * double(n) * double(k) <= small_kernel_limit;
}

bool small_kernel_pieces() {
  if (small_pieces_setting >= 0) return small_pieces_setting == 1;
  return openblas().avx512_small_kernels && openblas().info.threads == 1;
}

GemmCut small_kernel_cut(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
                         real beta) {
  // (not a size BLAS takes: passed on whole, for BLAS to refuse as it did)
  if (m <= 0 || n <= 0 || k <= 0) return {};
  if (double(m) * double(n) * double(k) <= small_kernel_limit)
    return {};  // already in the small kernels
  // (sizes multiplied in double: no overflow for any int64 m, n, k)
  const double mn = double(m) * double(n), nk = double(n) * double(k);
  const bool narrow = n <= pieces_narrow_n;
  bool gains = false;
  if (transpose_a)  // A^T B (A^T B^T: never)
    gains = !transpose_b && mn <= pieces_mn_limit;
  else if (transpose_b)  // A B^T
    gains = nk <= double(narrow ? pieces_copied_narrow_b_limit : pieces_copied_b_limit);
  else  // A B
    gains = nk <= pieces_nk_limit || (narrow && nk <= pieces_narrow_nk_limit) ||
            (beta == 0 && nk <= pieces_cleared_nk_limit);
  if (!gains || reference_mode() || !small_kernel_pieces()) return {};
  if (transpose_a) return {0, mn <= 4096 ? 64 : 32};  // A^T B: stretches of k
  GemmCut cut;  // A B, A B^T: blocks of rows, and stretches of k for a narrow B's long k
  if (narrow && nk > pieces_nk_limit) {
    cut.depth = 1;
    while (n * cut.depth * 2 <= pieces_nk_limit) cut.depth *= 2;
  }
  const double piece_nk = double(n) * double(cut.depth > 0 ? cut.depth : k);
  cut.rows = 1;
  while (double(cut.rows) * 2 * piece_nk <= piece_budget) cut.rows *= 2;
  return cut;
}

void set_small_kernel_pieces(int setting) {
  AG_CHECK(setting >= -1 && setting <= 1,
           "set_small_kernel_pieces: setting {} is not -1 (by the core), 0 (off) or 1 (on)",
           setting);
  small_pieces_setting = setting;
}

void set_small_nt_via_tt(int setting) {
  AG_CHECK(setting >= -1 && setting <= 1,
           "set_small_nt_via_tt: setting {} is not -1 (by the core), 0 (off) or 1 (on)", setting);
  small_nt_setting = setting;
}

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
  if (m <= limit && k <= limit) {  // the usual case: one call (or the fast twins' pieces)
    const GemmCut cut = small_kernel_cut(transpose_a, transpose_b, m, n, k, beta);
    if (cut.cuts() && transpose_b)
      call_blas_nt_in_pieces(cut, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else if (cut.cuts())
      call_blas_in_pieces(transpose_a, cut, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else if (!transpose_a && transpose_b && small_nt_runs_as_tt(m, n, k))
      call_blas_nt_as_tt(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else
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
