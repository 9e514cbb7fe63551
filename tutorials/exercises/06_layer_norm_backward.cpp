// Exercise 06: LayerNorm's backward [F3.6]
//
// Chapter 06's Transformer (docs/tutorials/06-tiny-transformer.md) normalises
// each row of d features: y = gamma * x_hat + beta, x_hat = (x - mu) * rstd,
// rstd = 1 / sqrt(sigma^2 + eps). Its backward is the one in the library with
// a twist: x_hat depends on x three ways (directly, through mu, through
// sigma^2), so with n = g * gamma, per row,
//
//   dL/dx_i   = rstd * (n_i - mean_j(n_j) - x_hat_i * mean_j(n_j x_hat_j))
//   dL/dgamma = sum over the rows of g * x_hat          dL/dbeta = sum over the rows of g
//
// Replace each TODO() with attograd ops (mean, sum, *, -: autograd/ops.hpp),
// then run
//
//   make exercise-06
//
// It checks your steps against the gradients of nn::layer_norm
// (layers/basic/layer_norm.cpp), then plugs your backward into one training step
// of a LayerNorm and a Linear classifier and compares every gradient. Stuck?
// tutorials/exercises/solutions/06_layer_norm_backward.cpp.
#include "tutorials/exercises/06_layer_norm_backward.hpp"

namespace ag::exercise {

void layer_norm_backward(const Tensor& g, const Tensor& x_hat, const Tensor& rstd,
                         const Tensor& gamma, LayerNormBackwardSteps& steps) {
  // n = g * gamma: the gradient that reaches x_hat                        (N,d) * (d) -> (N,d)
  steps.n = TODO();
  // mean_j n_j per row, keepdim                                           (N,d) -> (N,1)
  steps.mean_n = TODO();
  // mean_j n_j x_hat_j per row, keepdim                                   (N,d) -> (N,1)
  steps.mean_n_xhat = TODO();
  // [F3.6] dL/dx_i = rstd * (n_i - mean_n - x_hat_i * mean_n_xhat)        (N,d)
  steps.grad_input = TODO();
  // [F3.6] dL/dgamma = sum over the rows of g * x_hat                     (N,d) -> (d)
  steps.grad_weight = TODO();
  // [F3.6] dL/dbeta = sum over the rows of g                              (N,d) -> (d)
  steps.grad_bias = TODO();
}

}  // namespace ag::exercise
