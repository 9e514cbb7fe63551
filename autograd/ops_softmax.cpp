// softmax and log_softmax, fused: one kernel for the forward (max subtracted so
// no exp overflows) and one closed-form backward, instead of a graph of
// exp, sum and div nodes.
#include <cmath>

#include "autograd/node.hpp"
#include "autograd/ops.hpp"
#include "core/fast_math.hpp"
#include "core/kernels.hpp"

namespace ag {

Tensor softmax(const Tensor& a, int64_t dim) {
  dim = normalize_dim(dim, a.dim(), "softmax", a.shape());
  Tensor out = kernel::softmax(a, dim);
  // y = softmax(x):  dy_i/dx_j = y_i (delta_ij - y_j), so
  // dL/dx_j = y_j (g_j - sum_i g_i y_i)      (sum along dim)
  record("SoftmaxBackward", out, {a}, [dim](const Tensor& g, const Tensor& y) {
    return Grads{kernel::softmax_backward(g, y, dim)};  // one fused pass (core/kernels_reduce.cpp)
  });
  return out;
}

Tensor log_softmax(const Tensor& a, int64_t dim) {
  dim = normalize_dim(dim, a.dim(), "log_softmax", a.shape());
  Tensor out = kernel::log_softmax(a, dim);
  // y = log_softmax(x) = x - log sum_k exp(x_k):  dy_i/dx_j = delta_ij - softmax(x)_j, so
  // dL/dx_j = g_j - softmax(x)_j sum_i g_i = g_j - exp(y_j) sum_i g_i
  record("LogSoftmaxBackward", out, {a}, [dim](const Tensor& g, const Tensor& y) {
    Tensor total = kernel::sum_dim(g, dim, /*keepdim=*/true);
    Tensor p = kernel::map(y, [](real v) { return fast::exp(v); });
    return Grads{
        kernel::zip(g, kernel::zip(p, total, "log_softmax", [](real pi, real s) { return pi * s; }),
                    "log_softmax", [](real gi, real v) { return gi - v; })};
  });
  return out;
}

}  // namespace ag
