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


namespace {

// Sets the small-NT choice for a block (-1: by the core, 0: off, 1: on), then restores it.
struct SmallNtSetting {
  explicit SmallNtSetting(int setting) { set_small_nt_via_tt(setting); }
  ~SmallNtSetting() { set_small_nt_via_tt(-1); }
  SmallNtSetting(const SmallNtSetting&) = delete;
  SmallNtSetting& operator=(const SmallNtSetting&) = delete;
};

// Entry (i, j): (0.375 i + 0.125 j + offset) mod 3 - 1.5, multiples of 1/8 of
// both signs, so that every product and sum below is exact in float.
std::vector<real> ramp(int64_t rows, int64_t stride, real offset) {
  std::vector<real> v(static_cast<size_t>(rows * stride));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < stride; ++j)
      v[static_cast<size_t>(i * stride + j)] =
          real(std::fmod(double(i) * 0.375 + double(j) * 0.125 + double(offset), 3.0) - 1.5);
  return v;
}

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
  const std::vector<real> a = ramp(p.m, p.lda, 0.25), b = ramp(p.n, p.ldb, 0.5);
  std::vector<real> c = ramp(p.m, p.ldc, 0.75);
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

const std::vector<NtCase> nt_cases = {
    {1, 1, 1, 1, 1, 1, 1, 0},        {7, 5, 3, 3, 3, 5, 1, 0},
    {8, 8, 8, 8, 8, 8, 0.5, 2},      {9, 17, 13, 13, 13, 17, 1, 1},
    {32, 64, 64, 64, 64, 64, 1, 0},  {32, 256, 64, 768, 64, 3072, 1, 1},
    {23, 40, 96, 100, 97, 41, 2, 0}, {16, 3, 31, 33, 31, 3, -1, 0.5},
};

}  // namespace

TEST_CASE("gemm: a small A B^T is right with the transposed copy on and off") {
  for (const NtCase& p : nt_cases) {
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
      on = nt_product(p);
    }
    CHECK(on == off);  // exact sums: the same numbers either way
  }
}

TEST_CASE("gemm: with the copy on, fast mode runs the product as A^T^T B^T, reference mode as A B^T") {
  // Same bits as an explicit (A^T)^T B^T call on a transposed copy made here,
  // in fast mode; as the plain call in reference mode. Random entries: OpenBLAS's
  // AVX-512 kernels add them up in different orders, and 52 of the 64 entries
  // differ in their last bits between the two forms.
  const NtCase p{8, 8, 64, 64, 64, 8, 1, 0};
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

TEST_CASE("gemm: an A B^T past the small sizes goes to BLAS as it is, with the copy on") {
  // A of 8193 numbers (past the copy's 8192); A of 8000 numbers but
  // 20 x 126 x 400 = 1,008,000 multiply-adds (past 100^3)
  for (const NtCase& p : {NtCase{1, 2, 8193, 8193, 8193, 2, 1, 0},
                          NtCase{20, 126, 400, 400, 400, 126, 1, 0}}) {
    CAPTURE(p.m);
    const std::vector<real> a = normal_entries(p.m, p.k, 7), b = normal_entries(p.n, p.k, 8);
    std::vector<real> plain(static_cast<size_t>(p.m * p.n)), copied = plain;
    {
      SmallNtSetting off(0);
      gemm(false, true, p.m, p.n, p.k, 1, a.data(), b.data(), 0, plain.data());
    }
    SmallNtSetting on(1);
    gemm(false, true, p.m, p.n, p.k, 1, a.data(), b.data(), 0, copied.data());
    CHECK(copied == plain);
  }
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
