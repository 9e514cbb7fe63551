// The softmax of one row, written once for the whole engine. softmax and
// log_softmax (core/kernels_reduce.cpp), the fused attention weights
// (layers/attention/scaled_dot_product.cpp, which multi-head attention runs too) and
// cross-entropy (layers/framework/loss.cpp) all call these on contiguous rows of `size`:
//
//   max  = max_k x_k, or 0 when every x_k is -inf (a row masked everywhere:
//          exp(-inf - 0) = 0, where exp(-inf - (-inf)) would be NaN)
//   e_k  = exp(x_k - max)                  every exponent <= 0: no overflow
//   softmax      y_k = e_k / sum_j e_j     all zeros when the sum is 0; a NaN stays NaN
//   log_softmax  y_k = x_k - max - log(sum_j e_j)      -inf when the sum is 0
//   backward     dx_k = y_k (g_k - sum_j g_j y_j)      (times a scale, see below)
//
// Always inlined, so each caller's loops are compiled for the instruction sets
// it is cloned for (AG_SIMD_CLONES, core/simd.hpp); the max and the sums run in
// 8 lanes (core/kernels.hpp), which vectorizes where a running max would not.
#pragma once

#include <cmath>
#include <limits>

#include "core/fast_math.hpp"
#include "core/kernels.hpp"

namespace ag::kernel {

struct ExpRow {
  real max;  // what was subtracted (0 for a row all -inf)
  real sum;  // sum_k exp(x_k - max)
};

// e_k = exp(x_k - max) for a row; e may be x.
AG_ALWAYS_INLINE ExpRow exp_minus_max(const real* x, real* e, int64_t size) {
  const real minus_inf = -std::numeric_limits<real>::infinity();
  real max = max_lanes(size, minus_inf, [&](int64_t k) { return x[k]; });
  if (max == minus_inf) max = 0;
  for (int64_t k = 0; k < size; ++k) e[k] = fast::exp(x[k] - max);
  return {max, sum_lanes(size, [&](int64_t k) { return e[k]; })};
}

// The same e_k = exp(x_k - max) for `rows` rows of a short `size` (fewer than
// a vector's lanes: a classifier's 3 logits), where one row at a time would
// leave most lanes empty: each row's max first (into every e_k of its row),
// then every exp of the block in one flat loop, which vectorizes across rows,
// then each row's sum. Fills maxima[r] and sums[r]; e must not be x.
AG_ALWAYS_INLINE void exp_minus_max_rows(const real* x, real* e, int64_t rows, int64_t size,
                                         real* maxima, real* sums) {
  const real minus_inf = -std::numeric_limits<real>::infinity();
  for (int64_t r = 0; r < rows; ++r) {
    const real* xr = x + r * size;
    real max = minus_inf;
    for (int64_t k = 0; k < size; ++k) max = xr[k] > max ? xr[k] : max;
    if (max == minus_inf) max = 0;
    maxima[r] = max;
    for (int64_t k = 0; k < size; ++k) e[r * size + k] = max;
  }
  for (int64_t i = 0; i < rows * size; ++i) e[i] = fast::exp(x[i] - e[i]);
  for (int64_t r = 0; r < rows; ++r) {
    real sum = 0;
    for (int64_t k = 0; k < size; ++k) sum += e[r * size + k];
    sums[r] = sum;
  }
}

// y_k = e_k / sum, with a zero sum (every position masked) giving zeros.
AG_ALWAYS_INLINE void divide_by_sum(real* e, int64_t size, real sum) {
  const real scale = sum == 0 ? 0 : 1 / sum;  // a NaN sum keeps the row NaN
  for (int64_t k = 0; k < size; ++k) e[k] *= scale;
}

// y = softmax(x) over one row; y may be x.
AG_ALWAYS_INLINE void softmax_row(const real* x, real* y, int64_t size) {
  divide_by_sum(y, size, exp_minus_max(x, y, size).sum);
}

// y = log_softmax(x) over one row; y must not be x (it holds the e_k first).
AG_ALWAYS_INLINE void log_softmax_row(const real* x, real* y, int64_t size) {
  const ExpRow row = exp_minus_max(x, y, size);
  const real log_sum = std::log(row.sum);
  const real minus_inf = -std::numeric_limits<real>::infinity();
  for (int64_t k = 0; k < size; ++k) y[k] = row.sum == 0 ? minus_inf : x[k] - row.max - log_sum;
}

// dL/dx of y = softmax(x / divisor) over one row, given g = dL/dy:
//   dx_k = y_k (g_k - sum_j g_j y_j) * scale,   scale = 1 / divisor (1 for plain softmax)
// Masked positions have y = 0 and get no gradient. dx may be g.
// Its last step, given dot = sum_j g_j y_j (computed apart when several rows
// fold their sums together, layers/attention/scaled_dot_product.cpp).
AG_ALWAYS_INLINE void softmax_backward_given_dot(const real* g, const real* y, real* dx,
                                                 int64_t size, real dot, real scale) {
  for (int64_t k = 0; k < size; ++k) dx[k] = y[k] * (g[k] - dot) * scale;
}

AG_ALWAYS_INLINE void softmax_backward_row(const real* g, const real* y, real* dx, int64_t size,
                                           real scale = 1) {
  const real dot = sum_lanes(size, [&](int64_t k) { return g[k] * y[k]; });
  softmax_backward_given_dot(g, y, dx, size, dot, scale);
}

}  // namespace ag::kernel
