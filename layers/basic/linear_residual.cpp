// residual + (x W^T + b) as one op: a linear layer whose output joins a
// residual stream, as the Transformer's output projection and second
// feed-forward layer do, x + SelfAttn(LN(x)) and x + FFN(LN(x)) of [F3.6]
// (layers/transformer/transformer.cpp writes those sums). Reference mode runs
// the two ops as written. Fast mode starts y as residual + b in every row and
// lets the GEMM add x W^T to it (beta = 1), so the sum is not one more pass
// over (B,T,d) that reads two tensors and writes a third.
#include "layers/basic/linear.hpp"

#include <algorithm>

#include "autograd/ops.hpp"
#include "core/blas.hpp"
#include "core/error.hpp"
#include "core/mode.hpp"
#include "layers/basic/affine.hpp"

namespace ag::nn {

Tensor linear_plus_residual(const Tensor& x, const Tensor& weight, const Tensor& bias,
                            const Tensor& residual) {
  check_linear(x, weight, bias);
  Shape y_shape = x.shape();
  y_shape.back() = weight.shape()[0];  // a 1-D input is one row, (in) -> (out)
  AG_CHECK(residual.defined() && residual.shape() == y_shape,
           "linear_plus_residual: residual {} must have the output's shape {} (input {}, "
           "weight {})",
           describe(residual), shape_str(y_shape), describe(x), describe(weight));
  // y = residual + (x W^T + b), as written
  if (reference_mode()) return residual + linear(x, weight, bias);

  const int64_t rows = rows_of(x), out_features = weight.shape()[0];
  const int64_t in_features = weight.shape()[1];
  Tensor y = Tensor::empty(y_shape, "linear_plus_residual");
  if (y.numel() > 0) {  // (an empty y's rows could still number 2^62)
    if (bias.defined())
      add_bias_to_rows(residual.data(), out_features, bias.data(), y.data(), rows, out_features);
    else
      std::copy_n(residual.data(), y.numel(), y.data());
    gemm(false, true, rows, out_features, in_features, 1, x.data(), weight.data(), 1, y.data());
  }
  // dL/dx, dL/dW, dL/db as linear's (affine_grads); dL/dresidual = g
  std::vector<Tensor> inputs{x, weight};
  if (bias.defined()) inputs.push_back(bias);
  inputs.push_back(residual);
  record("LinearPlusResidualBackward", y, inputs,
         [x, weight, has_bias = bias.defined(), rows](const Tensor& g, const Tensor&,
                                                      const GradSums& sums) {
           Grads grads = affine_grads(g, x, weight, has_bias, rows, sums);
           grads.push_back(g);
           return grads;
         });
  return y;
}

}  // namespace ag::nn
