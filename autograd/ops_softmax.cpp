// softmax and log_softmax: each one recorded op, its forward (max subtracted so
// no exp overflows) and its closed-form backward side by side, not a graph of
// exp, sum and div nodes. The forward runs the engine's one softmax row rule
// (core/softmax_row.hpp) in both modes; the backward is that file's one-pass
// row in fast mode and the formula written with ops in reference mode.
#include <cmath>

#include "autograd/node.hpp"
#include "autograd/ops.hpp"
#include "core/fast_math.hpp"
#include "core/kernels.hpp"
#include "core/mode.hpp"

namespace ag {

namespace {

// The backwards, as functions of their own so that `break softmax_backward`
// stops in them. `plain` is the mode the forward ran in.

// y = softmax(x):  dy_i/dx_j = y_i (delta_ij - y_j), so
// dL/dx_j = y_j (g_j - sum_i g_i y_i)      (sum along dim)
Tensor softmax_backward(const Tensor& g, const Tensor& y, int64_t dim, bool plain) {
  if (plain) return y * (g - sum(g * y, dim, /*keepdim=*/true));
  return kernel::softmax_backward(g, y, dim);  // the line above in one pass
}

// y = log_softmax(x) = x - log sum_k exp(x_k):  dy_i/dx_j = delta_ij - softmax(x)_j, so
// dL/dx_j = g_j - softmax(x)_j sum_i g_i = g_j - exp(y_j) sum_i g_i
Tensor log_softmax_backward(const Tensor& g, const Tensor& y, int64_t dim, bool plain) {
  if (plain) return g - exp(y) * sum(g, dim, /*keepdim=*/true);
  // The line above in three passes without the graph: sum, exp, one zip.
  Tensor total = kernel::sum_dim(g, dim, /*keepdim=*/true);
  Tensor p = kernel::map(y, [](real v) { return fast::exp(v); });
  return kernel::zip(g, kernel::zip(p, total, "log_softmax", [](real pi, real s) { return pi * s; }),
                     "log_softmax", [](real gi, real v) { return gi - v; });
}

}  // namespace

Tensor softmax(const Tensor& a, int64_t dim) {
  check_defined(a, "softmax");
  dim = normalize_dim(dim, a.dim(), "softmax", a.shape());
  const bool plain = reference_mode();
  // [F0.2] y_i = exp(x_i - max) / sum_j exp(x_j - max)     along dim
  Tensor out = kernel::softmax(a, dim);
  record("SoftmaxBackward", out, {a}, [dim, plain](const Tensor& g, const Tensor& y) {
    return Grads{softmax_backward(g, y, dim, plain)};
  });
  return out;
}

Tensor log_softmax(const Tensor& a, int64_t dim) {
  check_defined(a, "log_softmax");
  dim = normalize_dim(dim, a.dim(), "log_softmax", a.shape());
  const bool plain = reference_mode();
  // y_i = x_i - max - log sum_j exp(x_j - max)             along dim
  Tensor out = kernel::log_softmax(a, dim);
  record("LogSoftmaxBackward", out, {a}, [dim, plain](const Tensor& g, const Tensor& y) {
    return Grads{log_softmax_backward(g, y, dim, plain)};
  });
  return out;
}

}  // namespace ag
