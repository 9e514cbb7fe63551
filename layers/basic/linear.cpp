// Linear layer: forward and backward of y = x W^T + b side by side. Every
// projection of the seeds is this op: the point-attention score [F0.1], the
// query/key/value maps [F2.2], the output projection [F0.10], the FFN [F3.3].
#include "layers/basic/linear.hpp"

#include <cmath>

#include "autograd/node.hpp"
#include "autograd/ops.hpp"
#include "core/blas.hpp"
#include "core/creation.hpp"
#include "core/kernels.hpp"
#include "core/mode.hpp"
#include "core/simd.hpp"
#include "layers/basic/affine.hpp"
#include "layers/framework/init.hpp"

namespace ag::nn {

namespace {
// The fast twin's loops (compiled per instruction set, core/simd.hpp).

// y_r = b for each of `rows` rows of n
AG_SIMD_CLONES void copy_to_rows(const real* b, real* y, int64_t rows, int64_t n) noexcept {
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < n; ++j) y[r * n + j] = b[j];
}

// sum (+)= sum_r g_r over `rows` rows of n: the bias gradient. Four rows per
// pass over sum: each += waits for the one before it (through memory), so
// fewer of them halve the time.
AG_SIMD_CLONES void add_row_sums(const real* g, real* sum, int64_t rows, int64_t n,
                                 bool adding) noexcept {
  if (!adding)
    for (int64_t j = 0; j < n; ++j) sum[j] = 0;
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    const real* g0 = g + r * n;
    for (int64_t j = 0; j < n; ++j) sum[j] += (g0[j] + g0[n + j]) + (g0[2 * n + j] + g0[3 * n + j]);
  }
  for (; r < rows; ++r)
    for (int64_t j = 0; j < n; ++j) sum[j] += g[r * n + j];
}

}  // namespace

AG_SIMD_CLONES void add_bias_to_rows(const real* x, int64_t x_stride, const real* bias, real* out,
                                     int64_t rows, int64_t n) noexcept {
  for (int64_t r = 0; r < rows; ++r)
#pragma GCC ivdep  // out never overlaps x or bias: no overlap to check for
    for (int64_t j = 0; j < n; ++j) out[r * n + j] = x[r * x_stride + j] + bias[j];
}

// x (..., in), weight (out, in) and bias (out) fit together, within BLAS's reach.
void check_linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  AG_CHECK(x.defined() && weight.defined(), "linear: the {} is an undefined tensor",
           x.defined() ? "weight" : "input");
  AG_CHECK(weight.dim() == 2, "linear: weight must be 2-D (out, in), got {}", describe(weight));
  AG_CHECK(x.dim() >= 1 && x.shape().back() == weight.shape()[1],
           "linear: input {} does not end in in_features = {} (weight {})", describe(x),
           weight.shape()[1], describe(weight));
  const int64_t out_features = weight.shape()[0];
  AG_CHECK(!bias.defined() || bias.shape() == Shape{out_features},
           "linear: bias {} must have shape ({}) to match weight {}", describe(bias), out_features,
           describe(weight));
  // BLAS reads a row of x, W or y in one call (core/blas.hpp): it must fit its int.
  AG_CHECK(
      x.numel() == 0 || (weight.shape()[1] <= blas_int_max() && out_features <= blas_int_max()),
      "linear: input {} and weight {} have rows past BLAS's int limit {} (a product is split "
      "along its rows and its inner sum, not along a row)",
      describe(x), describe(weight), blas_int_max());
}

// Fast mode's y = x W^T + b for `rows` rows: W read transposed by BLAS, not
// copied. y starts as b in every row and the GEMM adds x W^T to it (beta = 1):
// no separate pass over y for the bias, and BLAS does not first zero y.
Tensor affine_rows(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t rows) {
  const int64_t out_features = weight.shape()[0], in_features = weight.shape()[1];
  Shape y_shape = x.shape();
  y_shape.back() = out_features;  // a 1-D input is one row, (in) -> (out)
  Tensor y = Tensor::empty(y_shape, "linear");
  // (an empty y's rows could still number 2^62: nothing to fill)
  if (bias.defined() && y.numel() > 0) copy_to_rows(bias.data(), y.data(), rows, out_features);
  gemm(false, true, rows, out_features, in_features, 1, x.data(), weight.data(),
       bias.defined() ? 1 : 0, y.data());
  return y;
}

// The backward of y = x W^T + b, given g = dL/dy (rows, out):
//   dL/dx = g W           (rows, out) x (out, in)
//   dL/dW = g^T x         summed over every row of the batch: one GEMM, (out, in)
//   dL/db = sum_rows g    (out)
// Each is added into the gradient its input has gathered so far, when there
// is one (GradSums, autograd/node.hpp: a GEMM with beta = 1, a += loop): the
// weights of a layer used at every step of an RNN gather one term per step.
Grads affine_grads(const Tensor& g, const Tensor& x, const Tensor& weight, bool has_bias,
                   int64_t rows, const GradSums& sums) {
  const int64_t out_features = weight.shape()[0], in_features = weight.shape()[1];
  Grads grads(has_bias ? 3 : 2);
  bool adding = false;
  if (x.requires_grad()) {
    grads[0] = sums.existing_or_new(0, x.shape(), adding);
    gemm(false, false, rows, in_features, out_features, 1, g.data(), weight.data(), adding ? 1 : 0,
         grads[0].data());
  }
  if (weight.requires_grad()) {
    grads[1] = sums.existing_or_new(1, weight.shape(), adding);
    gemm(true, false, out_features, in_features, rows, 1, g.data(), x.data(), adding ? 1 : 0,
         grads[1].data());
  }
  if (has_bias) {
    grads[2] = sums.existing_or_new(2, {out_features}, adding);
    add_row_sums(g.data(), grads[2].data(), rows, out_features, adding);
  }
  return grads;
}

// The rows of x: all its dims but the last (a 1-D x is one row).
int64_t rows_of(const Tensor& x) {
  return shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_linear(x, weight, bias);
  if (reference_mode()) {
    // y = x W^T + b, as written       (..., in) x (in, out) + (out)
    Tensor y = matmul(x, transpose(weight, 0, 1));
    return bias.defined() ? y + bias : y;
  }
  // Fast mode, the same in one op (affine_rows and affine_grads above).
  const int64_t rows = rows_of(x);
  Tensor y = affine_rows(x, weight, bias, rows);
  record_linear("LinearBackward", y, x, weight, bias,
                [x, weight, has_bias = bias.defined(), rows](const Tensor& g, const Tensor&,
                                                             const GradSums& sums) {
                  return affine_grads(g, x, weight, has_bias, rows, sums);
                });
  return y;
}

Linear::Linear(int64_t in_features, int64_t out_features, bool has_bias)
    : UnaryModule("Linear"), in_features(in_features), out_features(out_features) {
  AG_CHECK(in_features > 0 && out_features > 0,
           "Linear: in_features and out_features must be positive, got {} and {}", in_features,
           out_features);
  weight = register_parameter("weight", Tensor::empty({out_features, in_features}, "Linear"));
  init::kaiming_uniform_(weight, std::sqrt(real(5)));
  if (has_bias) {
    real bound = 1 / std::sqrt(static_cast<real>(in_features));
    bias = register_parameter("bias", Tensor::empty({out_features}, "Linear"));
    init::uniform_(bias, -bound, bound);
  }
}

Tensor Linear::forward(const Tensor& x) { return linear(x, weight, bias); }

std::string Linear::extra_repr() const {
  return fmt::format("in_features={}, out_features={}, bias={}", in_features, out_features,
                     bias.defined());
}

}  // namespace ag::nn
