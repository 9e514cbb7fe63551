// gemm_strided's fast twin for small A B^T products: (A^T)^T B^T from a
// transposed copy of A (core/blas.cpp). Forced on and off here, so that both
// forms run on any CPU, and checked against products summed by hand in double,
// on sizes that leave every edge of the 8 x 8 transpose tiles, with row
// strides wider than the rows, alpha and beta.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "core/blas.hpp"
#include "core/creation.hpp"
#include "core/mode.hpp"
#include "tests/helpers.hpp"

using namespace ag;
using ag::testing::check_error;
using ag::testing::eighths_matrix;

namespace {

// The small-NT choice for a block (-1: by the core, 0: off, 1: on), then back to -1.
struct SmallNtSetting : ag::testing::GemmFormSetting {
  explicit SmallNtSetting(int setting) : GemmFormSetting(set_small_nt_via_tt, setting) {}
};

// Standard normal entries (rows, cols), row-major.
std::vector<real> normal_entries(int64_t rows, int64_t cols, uint64_t seed) {
  Generator gen(seed);
  const Tensor t = randn({rows, cols}, gen);
  return std::vector<real>(t.data(), t.data() + t.numel());
}

struct NtCase {
  int64_t m, n, k, lda, ldb, ldc;
  real alpha, beta;
};

// C = alpha A B^T + beta C0 through gemm_strided, checked entry by entry
// against the same sums in double; returns C for comparisons between forms.
std::vector<real> nt_product(const NtCase& p) {
  const std::vector<real> a = eighths_matrix(p.m, p.lda, 2), b = eighths_matrix(p.n, p.ldb, 4);
  std::vector<real> c = eighths_matrix(p.m, p.ldc, 6);
  const std::vector<real> c0 = c;
  gemm_strided(false, true, p.m, p.n, p.k, p.alpha, a.data(), p.lda, b.data(), p.ldb, p.beta,
               c.data(), p.ldc);
  for (int64_t i = 0; i < p.m; ++i)
    for (int64_t j = 0; j < p.ldc; ++j) {
      const size_t at = static_cast<size_t>(i * p.ldc + j);
      if (j >= p.n) {  // past the row's n entries: untouched
        CHECK(c[at] == c0[at]);
        continue;
      }
      double sum = 0, size = 0;
      for (int64_t q = 0; q < p.k; ++q) {
        const double term = double(a[static_cast<size_t>(i * p.lda + q)]) *
                            double(b[static_cast<size_t>(j * p.ldb + q)]);
        sum += term;
        size += std::fabs(term);
      }
      const double expected = double(p.alpha) * sum + double(p.beta) * double(c0[at]);
      const double scale = std::fabs(double(p.alpha)) * size + std::fabs(double(p.beta * c0[at]));
      CHECK(std::fabs(double(c[at]) - expected) <= 1e-5 * scale + 1e-30);
    }
  return c;
}

// The first five run through the copy (with it on), the last four do not.
const std::vector<NtCase> nt_cases = {
    {32, 64, 64, 64, 64, 64, 1, 0},
    {32, 256, 64, 768, 64, 3072, 1, 1},
    {16, 64, 37, 40, 37, 70, 0.5, 2},
    {32, 33, 19, 19, 21, 33, -1, 0.5},
    {16, 100, 100, 100, 100, 100, 2, 0},
    {1, 1, 1, 1, 1, 1, 1, 0},
    {7, 5, 3, 3, 3, 5, 1, 0},
    {9, 17, 13, 13, 13, 17, 1, 1},
    {32, 10, 64, 64, 64, 10, 1, 0},
};

}  // namespace

TEST_CASE("gemm: a small A B^T is right with the transposed copy on and off") {
  ReferenceModeGuard fast_code(false);  // the suite also runs whole in reference mode
  for (size_t i = 0; i < nt_cases.size(); ++i) {
    const NtCase& p = nt_cases[i];
    CAPTURE(p.m);
    CAPTURE(p.n);
    CAPTURE(p.k);
    CAPTURE(p.lda);
    CAPTURE(p.ldc);
    std::vector<real> off, on;
    {
      SmallNtSetting plain(0);
      off = nt_product(p);
    }
    {
      SmallNtSetting copied(1);
      CHECK(small_nt_runs_as_tt(p.m, p.n, p.k) == (i < 5));
      on = nt_product(p);
    }
    CHECK(on == off);  // exact sums: the same numbers either way
  }
}

TEST_CASE("gemm: with the copy on, fast mode runs (A^T)^T B^T, reference mode A B^T") {
  // Same bits as an explicit (A^T)^T B^T call on a transposed copy made here,
  // in fast mode; as the plain call in reference mode. Random entries: OpenBLAS's
  // AVX-512 kernels add them up in different orders, and 895 of the 1024
  // entries differ in their last bits between the two forms.
  const NtCase p{32, 32, 120, 120, 120, 32, 1, 0};
  const std::vector<real> a = normal_entries(p.m, p.k, 5), b = normal_entries(p.n, p.k, 6);
  std::vector<real> a_transposed(static_cast<size_t>(p.k * p.m));
  for (int64_t i = 0; i < p.m; ++i)
    for (int64_t q = 0; q < p.k; ++q)
      a_transposed[static_cast<size_t>(q * p.m + i)] = a[static_cast<size_t>(i * p.lda + q)];
  std::vector<real> by_tt(static_cast<size_t>(p.m * p.n)), by_nt = by_tt;
  gemm(true, true, p.m, p.n, p.k, 1, a_transposed.data(), b.data(), 0, by_tt.data());
  {
    SmallNtSetting plain(0);
    gemm(false, true, p.m, p.n, p.k, 1, a.data(), b.data(), 0, by_nt.data());
  }
  SmallNtSetting copied(1);
  std::vector<real> fast(by_tt.size()), reference(by_tt.size());
  {
    ReferenceModeGuard fast_code(false);  // the suite also runs whole in reference mode
    gemm(false, true, p.m, p.n, p.k, 1, a.data(), b.data(), 0, fast.data());
  }
  {
    ReferenceModeGuard plain_code;
    gemm(false, true, p.m, p.n, p.k, 1, a.data(), b.data(), 0, reference.data());
  }
  CHECK(fast == by_tt);
  CHECK(reference == by_nt);
}

TEST_CASE("gemm: which A B^T products go through the copy") {
  SmallNtSetting on(1);
  ReferenceModeGuard fast_code(false);
  // a batch of 16 or 32 rows; k >= 16; B of 64 rows or more, or of 32 or more with k <= 128
  CHECK(small_nt_runs_as_tt(32, 64, 64));
  CHECK(small_nt_runs_as_tt(16, 256, 32));
  CHECK(small_nt_runs_as_tt(32, 32, 16));
  CHECK(small_nt_runs_as_tt(32, 64, 256));
  CHECK_FALSE(small_nt_runs_as_tt(24, 64, 64));  // m neither 16 nor 32
  CHECK_FALSE(small_nt_runs_as_tt(64, 64, 64));
  CHECK_FALSE(small_nt_runs_as_tt(32, 10, 64));   // B too narrow for the copy to pay
  CHECK_FALSE(small_nt_runs_as_tt(32, 32, 256));  // n = 32 with a long k
  CHECK_FALSE(small_nt_runs_as_tt(32, 64, 8));    // k < 16
  // the limits: A of 8224 numbers (past 8192); 32 x 256 x 128 = 1,048,576
  // multiply-adds (past OpenBLAS's small kernels)
  CHECK_FALSE(small_nt_runs_as_tt(32, 64, 257));
  CHECK(small_nt_runs_as_tt(32, 64, 256));
  CHECK_FALSE(small_nt_runs_as_tt(32, 256, 128));
  CHECK(small_nt_runs_as_tt(32, 244, 128));
  {
    ReferenceModeGuard plain_code;
    CHECK_FALSE(small_nt_runs_as_tt(32, 64, 64));
  }
  SmallNtSetting off(0);
  CHECK_FALSE(small_nt_runs_as_tt(32, 64, 64));
}

TEST_CASE("gemm: the copy is on by default exactly for OpenBLAS's AVX-512 cores") {
  const std::string& core = blas_info().core;
  CHECK(small_nt_via_tt() == (core == "SkylakeX" || core == "Cooperlake"));
  {
    SmallNtSetting on(1);
    CHECK(small_nt_via_tt());
  }
  {
    SmallNtSetting off(0);
    CHECK_FALSE(small_nt_via_tt());
  }
  CHECK(small_nt_via_tt() == (core == "SkylakeX" || core == "Cooperlake"));
}

TEST_CASE("gemm: set_small_nt_via_tt refuses a setting other than -1, 0 and 1") {
  check_error([] { set_small_nt_via_tt(2); },
              {"set_small_nt_via_tt", "setting 2", "-1 (by the core), 0 (off) or 1 (on)"});
  CHECK(small_nt_via_tt() == (blas_info().core == "SkylakeX" || blas_info().core == "Cooperlake"));
}
