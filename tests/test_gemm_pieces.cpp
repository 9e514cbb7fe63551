// gemm_strided's fast twin for products just past OpenBLAS's small-matrix
// bound: A B in blocks of rows (and stretches of k for a narrow, long B), A B^T
// the same from a copy of B^T, A^T B in stretches of k added up in C
// (core/blas.cpp). Forced on and off here, so
// that both forms run on any CPU, and checked against sums in double on sizes
// with a last block or stretch cut short, rows that are not whole transpose
// tiles, row strides wider than the rows, alpha and beta.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/blas.hpp"
#include "core/creation.hpp"
#include "core/mode.hpp"
#include "tests/helpers.hpp"

using namespace ag;
using ag::testing::check_error;
using ag::testing::eighths_matrix;

template <>
struct doctest::StringMaker<GemmCut> {
  static doctest::String convert(const GemmCut& cut) {
    return ("{rows " + std::to_string(cut.rows) + ", depth " + std::to_string(cut.depth) + "}")
        .c_str();
  }
};

namespace {

// The pieces choice for a block (-1: by the core, 0: off, 1: on), then back to -1.
struct PiecesSetting : ag::testing::GemmFormSetting {
  explicit PiecesSetting(int setting) : GemmFormSetting(set_small_kernel_pieces, setting) {}
};

struct PieceCase {
  bool transpose_a, transpose_b;
  int64_t m, n, k, lda, ldb, ldc;
  real alpha, beta;
  GemmCut cut;  // what small_kernel_cut gives with the pieces on
};

// C = alpha op(A) op(B) + beta C0 through gemm_strided, checked entry by entry
// against the same sums in double (exact here).
void check_product(const PieceCase& p) {
  const int64_t a_rows = p.transpose_a ? p.k : p.m, b_rows = p.transpose_b ? p.n : p.k;
  const std::vector<real> a = eighths_matrix(a_rows, p.lda, 1),
                          b = eighths_matrix(b_rows, p.ldb, 2);
  std::vector<real> c = eighths_matrix(p.m, p.ldc, 3);
  const std::vector<real> c0 = c;
  gemm_strided(p.transpose_a, p.transpose_b, p.m, p.n, p.k, p.alpha, a.data(), p.lda, b.data(),
               p.ldb, p.beta, c.data(), p.ldc);
  auto a_at = [&](int64_t i, int64_t q) {
    return double(a[static_cast<size_t>(p.transpose_a ? q * p.lda + i : i * p.lda + q)]);
  };
  auto b_at = [&](int64_t q, int64_t j) {
    return double(b[static_cast<size_t>(p.transpose_b ? j * p.ldb + q : q * p.ldb + j)]);
  };
  int64_t wrong = 0;
  for (int64_t i = 0; i < p.m; ++i)
    for (int64_t j = 0; j < p.ldc; ++j) {
      const size_t at = static_cast<size_t>(i * p.ldc + j);
      double expected = double(c0[at]);  // past the row's n entries: untouched
      if (j < p.n) {
        double sum = 0;
        for (int64_t q = 0; q < p.k; ++q) sum += a_at(i, q) * b_at(q, j);
        expected = double(p.alpha) * sum + double(p.beta) * double(c0[at]);
      }
      if (double(c[at]) != expected) ++wrong;
    }
  CHECK(wrong == 0);
}

const std::vector<PieceCase> piece_cases = {
    // A B: blocks of 128 rows, the last of 104; then of 64 (n k = 8192)
    {false, false, 1000, 64, 64, 64, 64, 64, 1, 0, {128, 0}},
    {false, false, 300, 32, 256, 260, 40, 33, 0.5, 2, {64, 0}},
    // A B with beta = 0 and n k past 8192 (14000): blocks of 32 rows, the last of 12;
    // with beta = 0.5, whole
    {false, false, 300, 200, 70, 72, 210, 201, 1, 0, {32, 0}},
    {false, false, 300, 200, 70, 72, 210, 201, 1, 0.5, {}},
    // A B, n <= 64 and n k past 8192: also stretches of 128 and of 512, the last cut short
    {false, false, 1000, 64, 300, 310, 70, 66, 0.5, 2, {64, 128}},
    {false, false, 700, 16, 1000, 1000, 16, 16, 1, 1, {64, 512}},
    // A B^T: B^T copied, 60 rows of B (7 tiles and 4 more), k = 68 (8 tiles
    // and 4 more), B's rows 75 apart
    {false, true, 500, 60, 68, 70, 75, 61, 1, 1, {128, 0}},
    {false, true, 1024, 16, 128, 128, 130, 16, -1, 0, {256, 0}},
    // and n <= 64 with n k past 8192: stretches of k of 128, 48 rows of B, k = 300
    {false, true, 600, 48, 300, 310, 300, 50, 1, 2, {64, 128}},
    // A^T B: stretches of 64 (C of 4096) and of 32, the last cut short
    {true, false, 64, 64, 1000, 64, 64, 64, 1, 0, {0, 64}},
    {true, false, 256, 33, 150, 260, 40, 33, 2, 0.5, {0, 32}},
    // whole: within the bound, A^T B^T, n k past 8192 (n > 64) or 4096, m n past 16384
    {false, false, 100, 100, 100, 100, 100, 100, 1, 0, {}},
    {true, true, 1024, 64, 64, 1024, 64, 64, 1, 0, {}},
    {false, false, 400, 129, 64, 64, 129, 129, 1, 1, {}},
    {false, true, 400, 65, 64, 64, 64, 65, 1, 0, {}},
    {true, false, 129, 128, 100, 129, 128, 128, 1, 0, {}},
};

}  // namespace

TEST_CASE("gemm: products past the small kernels are right in pieces and whole") {
  ReferenceModeGuard fast_code(false);  // the suite also runs whole in reference mode
  for (const PieceCase& p : piece_cases) {
    CAPTURE(p.transpose_a);
    CAPTURE(p.transpose_b);
    CAPTURE(p.m);
    CAPTURE(p.n);
    CAPTURE(p.k);
    {
      PiecesSetting off(0);
      CHECK(small_kernel_cut(p.transpose_a, p.transpose_b, p.m, p.n, p.k, p.beta) == GemmCut{});
      check_product(p);
    }
    {
      PiecesSetting on(1);
      CHECK(small_kernel_cut(p.transpose_a, p.transpose_b, p.m, p.n, p.k, p.beta) == p.cut);
      check_product(p);
    }
  }
}

TEST_CASE("gemm: the pieces' rule at its limits") {
  PiecesSetting on(1);
  ReferenceModeGuard fast_code(false);
  // 244 x 64 x 64 = 999,424 multiply-adds: within OpenBLAS's small kernels; 245 rows past them
  CHECK(small_kernel_cut(false, false, 244, 64, 64) == GemmCut{});
  CHECK(small_kernel_cut(false, false, 245, 64, 64) == GemmCut{128, 0});
  // A B: blocks of rows of at most 2^19 multiply-adds, for n k up to 8192
  CHECK(small_kernel_cut(false, false, 1024, 128, 64) == GemmCut{64, 0});
  CHECK(small_kernel_cut(false, false, 100000, 4, 4) == GemmCut{32768, 0});
  // past 8192, for n <= 64 and n k up to 32768, stretches of k with n x stretch <= 8192 too
  CHECK(small_kernel_cut(false, false, 1024, 64, 129) == GemmCut{64, 128});
  CHECK(small_kernel_cut(false, false, 1024, 64, 512) == GemmCut{64, 128});
  CHECK(small_kernel_cut(false, false, 1024, 48, 300) == GemmCut{64, 128});
  CHECK(small_kernel_cut(false, false, 1024, 8, 2048) == GemmCut{64, 1024});
  CHECK(small_kernel_cut(false, false, 1024, 64, 513) == GemmCut{});
  CHECK(small_kernel_cut(false, false, 1024, 65, 256) == GemmCut{});
  // with beta = 0 (C only written), any n with n k up to 16384: blocks of rows alone
  CHECK(small_kernel_cut(false, false, 1024, 256, 64, 0) == GemmCut{32, 0});
  CHECK(small_kernel_cut(false, false, 1024, 256, 64, 1) == GemmCut{});
  CHECK(small_kernel_cut(false, false, 1024, 1024, 16, 0) == GemmCut{32, 0});
  CHECK(small_kernel_cut(false, false, 1024, 256, 65, 0) == GemmCut{});
  CHECK(small_kernel_cut(false, false, 1024, 64, 256, 0) == GemmCut{64, 128});
  CHECK(small_kernel_cut(false, true, 1024, 256, 64, 0) == GemmCut{});
  // A B^T: n k up to 4096, or up to 16384 for n <= 64 (stretches of k past 8192)
  CHECK(small_kernel_cut(false, true, 1024, 64, 64) == GemmCut{128, 0});
  CHECK(small_kernel_cut(false, true, 1024, 65, 64) == GemmCut{});
  CHECK(small_kernel_cut(false, true, 1024, 64, 65) == GemmCut{64, 0});
  CHECK(small_kernel_cut(false, true, 1024, 64, 256) == GemmCut{64, 128});
  CHECK(small_kernel_cut(false, true, 1024, 64, 257) == GemmCut{});
  // A^T B: m n up to 16384, stretches of 64 for m n up to 4096, else of 32
  CHECK(small_kernel_cut(true, false, 64, 64, 1024) == GemmCut{0, 64});
  CHECK(small_kernel_cut(true, false, 65, 64, 1024) == GemmCut{0, 32});
  CHECK(small_kernel_cut(true, false, 128, 128, 1024) == GemmCut{0, 32});
  CHECK(small_kernel_cut(true, false, 129, 128, 1024) == GemmCut{});
  // A^T B^T never
  CHECK(small_kernel_cut(true, true, 64, 64, 1024) == GemmCut{});
  // sizes BLAS refuses: whole, for BLAS to refuse
  CHECK(small_kernel_cut(false, false, 1000, -64, -1000) == GemmCut{});
  CHECK(small_kernel_cut(true, false, -64, 64, 100000) == GemmCut{});
  // sizes whose products overflow int64: whole, without undefined arithmetic
  const int64_t huge = int64_t(1) << 40;
  CHECK(small_kernel_cut(false, false, 1024, huge, huge) == GemmCut{});
  CHECK(small_kernel_cut(true, false, huge, huge, 1024) == GemmCut{});
  CHECK(small_kernel_cut(false, true, 1024, huge, huge) == GemmCut{});
  {
    ReferenceModeGuard plain_code;
    CHECK(small_kernel_cut(false, false, 1024, 64, 64) == GemmCut{});
  }
  PiecesSetting off(0);
  CHECK(small_kernel_cut(false, false, 1024, 64, 64) == GemmCut{});
}

TEST_CASE("gemm: with the pieces on, fast mode runs them, reference mode the whole product") {
  // A^T B of random entries, k = 1024 in stretches of 64: fast mode gives the
  // bits of the same stretches called one by one here, reference mode those
  // of the whole product.
  const int64_t m = 64, n = 64, k = 1024, depth = 64;
  Generator gen(9);
  const Tensor a = randn({k, m}, gen), b = randn({k, n}, gen);
  std::vector<real> whole(static_cast<size_t>(m * n)), stretches = whole;
  {
    PiecesSetting off(0);
    gemm(true, false, m, n, k, 1, a.data(), b.data(), 0, whole.data());
    for (int64_t p = 0; p < k; p += depth)  // each stretch within the bound: run whole
      gemm_strided(true, false, m, n, depth, 1, a.data() + p * m, m, b.data() + p * n, n,
                   p == 0 ? 0 : 1, stretches.data(), n);
  }
  PiecesSetting on(1);
  std::vector<real> fast(whole.size()), reference(whole.size());
  {
    ReferenceModeGuard fast_code(false);
    REQUIRE(small_kernel_cut(true, false, m, n, k) == GemmCut{0, depth});
    gemm(true, false, m, n, k, 1, a.data(), b.data(), 0, fast.data());
  }
  {
    ReferenceModeGuard plain_code;
    gemm(true, false, m, n, k, 1, a.data(), b.data(), 0, reference.data());
  }
  CHECK(fast == stretches);
  CHECK(reference == whole);
}

TEST_CASE("gemm: the pieces are on by default for OpenBLAS's AVX-512 cores with one thread") {
  const std::string& core = blas_info().core;
  const bool by_default = (core == "SkylakeX" || core == "Cooperlake") && blas_info().threads == 1;
  CHECK(small_kernel_pieces() == by_default);
  {
    PiecesSetting on(1);
    CHECK(small_kernel_pieces());
  }
  {
    PiecesSetting off(0);
    CHECK_FALSE(small_kernel_pieces());
  }
  CHECK(small_kernel_pieces() == by_default);
  check_error([] { set_small_kernel_pieces(-2); },
              {"set_small_kernel_pieces", "setting -2", "-1 (by the core), 0 (off) or 1 (on)"});
  CHECK(small_kernel_pieces() == by_default);
}
