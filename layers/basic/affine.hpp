// The pieces linear (layers/basic/linear.cpp), linear_relu
// (layers/basic/linear_relu.cpp) and linear_plus_residual share: their checks and, for fast mode,
// y = x W^T + b and its three gradients. Not part of layers/nn.hpp. It
// mirrors no formula of its own: linear's file says which projections of the
// seeds y = x W^T + b is.
#pragma once

#include <utility>

#include "autograd/node.hpp"

namespace ag::nn {

// x (..., in), weight (out, in) and bias (out) fit together, within BLAS's
// reach; errors name `linear`.
void check_linear(const Tensor& x, const Tensor& weight, const Tensor& bias);

// The rows of x: all its dims but the last (a 1-D x is one row).
int64_t rows_of(const Tensor& x);

// Fast mode's y = x W^T + b over `rows` rows of x, as one GEMM.
Tensor affine_rows(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t rows);

// Its backward given g = dL/dy: dL/dx, dL/dW and dL/db (when has_bias), each
// added into the sum its input gathered so far when there is one (GradSums).
Grads affine_grads(const Tensor& g, const Tensor& x, const Tensor& weight, bool has_bias,
                   int64_t rows, const GradSums& sums);

// out (rows,n) = x + bias in every row, where x is (rows,n) (x_stride n) or
// one row read again for every row (x_stride 0); out overlaps neither. A
// residual plus a bias (linear_residual.cpp), an LSTM's two bias rows
// (layers/recurrent/lstm.cpp). Compiled per instruction set (core/simd.hpp).
void add_bias_to_rows(const real* x, int64_t x_stride, const real* bias, real* out, int64_t rows,
                      int64_t n) noexcept;

// Records y's node over x, weight and (when defined) bias.
template <typename Backward>
void record_linear(const char* name, Tensor& y, const Tensor& x, const Tensor& weight,
                   const Tensor& bias, Backward backward) {
  if (bias.defined())
    record(name, y, {x, weight, bias}, std::move(backward));
  else
    record(name, y, {x, weight}, std::move(backward));
}

}  // namespace ag::nn
