// kernel::sum_lanes and kernel::max_lanes (core/kernels.hpp), the row sums and
// maxima under softmax, layer norm, attention scores and contexts: every row
// length from 0 to 70, so that each path (short rows, two sets of 8 lanes, one
// set, the tail) and each lane of the fold is reached.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "core/generator.hpp"
#include "core/kernels.hpp"

using namespace ag;

namespace {

// Element i of a row: an odd multiple of 1/16 in (0, 8), different for every
// i below 64. Every partial sum is exact, and, all being positive, a dropped or
// doubled element changes the total.
real sixteenths(int64_t i) { return real(2 * ((i * 37) % 64) + 1) / 16; }

}  // namespace

TEST_CASE("sum_lanes adds every element once, for every row length") {
  for (int64_t n = 0; n <= 70; ++n) {
    std::vector<real> row(static_cast<size_t>(n));
    double expected = 0;
    for (int64_t i = 0; i < n; ++i) {
      row[static_cast<size_t>(i)] = sixteenths(i);
      expected += double(sixteenths(i));
    }
    CAPTURE(n);
    CHECK(double(kernel::sum_lanes(n, [&](int64_t i) { return row[static_cast<size_t>(i)]; })) ==
          expected);
  }
}

TEST_CASE("sum_lanes of rounded values stays within the error bound of a float sum") {
  // A sum of n terms in any order is within (n - 1) eps sum|x_i| of the exact one.
  Generator gen(11);
  for (int64_t n : {9, 16, 17, 31, 32, 33, 64, 65, 70}) {
    std::vector<real> row(static_cast<size_t>(n));
    double exact = 0, magnitude = 0;
    for (real& x : row) {
      x = real(gen.normal());
      exact += double(x);
      magnitude += std::abs(double(x));
    }
    const double sum = kernel::sum_lanes(n, [&](int64_t i) { return row[static_cast<size_t>(i)]; });
    CAPTURE(n);
    CHECK(std::abs(sum - exact) <=
          double(n - 1) * double(std::numeric_limits<real>::epsilon()) * magnitude);
  }
}

TEST_CASE("max_lanes finds the maximum wherever it is, and ignores NaN") {
  const real nan = std::numeric_limits<real>::quiet_NaN();
  const real minus_inf = -std::numeric_limits<real>::infinity();
  CHECK(kernel::max_lanes(0, real(-7), [](int64_t) { return real(1); }) == real(-7));
  for (int64_t n = 1; n <= 70; ++n)
    for (int64_t at = 0; at < n; ++at) {
      // -1 everywhere, NaN at every third position, 5 at `at`
      auto term = [&](int64_t i) { return i == at ? real(5) : i % 3 == 1 ? nan : real(-1); };
      CAPTURE(n);
      CAPTURE(at);
      REQUIRE(kernel::max_lanes(n, minus_inf, term) == real(5));
    }
  // a row of NaN only, or of numbers all below the start: the start
  CHECK(kernel::max_lanes(20, minus_inf, [&](int64_t) { return nan; }) == minus_inf);
  for (int64_t n : {8, 9, 16, 23})
    CHECK(kernel::max_lanes(n, real(9), [](int64_t i) { return real(i % 5); }) == real(9));
}

TEST_CASE("fold_sum and fold_max (core/simd.hpp): every lane once, the max wherever it is") {
  // Lanes holds 16 floats or 8 doubles; fold_sum adds them in halves.
  Lanes v;
  double expected = 0;
  for (int l = 0; l < lanes_of_real; ++l) {
    v[l] = sixteenths(l);
    expected += double(sixteenths(l));
  }
  CHECK(double(fold_sum(v)) == expected);
  const real minus_inf = -std::numeric_limits<real>::infinity();
  for (int at = 0; at < lanes_of_real; ++at) {
    for (int l = 0; l < lanes_of_real; ++l) v[l] = l % 2 == 0 ? minus_inf : real(-l);
    v[at] = 5;
    CAPTURE(at);
    CHECK(fold_max(v) == real(5));
    CHECK(fold_sum(v) == minus_inf);  // -inf in half of the lanes
  }
  for (int l = 0; l < lanes_of_real; ++l) v[l] = minus_inf;
  CHECK(fold_max(v) == minus_inf);
}
