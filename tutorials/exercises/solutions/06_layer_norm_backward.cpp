// Exercise 06, solved: LayerNorm's backward [F3.6], the formula of
// layer_norm_backward_rows in layers/basic/layer_norm.cpp written with ops.
// `make solution-06` checks it.
#include "tutorials/exercises/06_layer_norm_backward.hpp"

namespace ag::exercise {

void layer_norm_backward(const Tensor& g, const Tensor& x_hat, const Tensor& rstd,
                         const Tensor& gamma, LayerNormBackwardSteps& steps) {
  // (N,d) * (d): gamma broadcasts over the rows
  steps.n = g * gamma;
  // the path through mu: every x_i moves the mean
  steps.mean_n = mean(steps.n, -1, /*keepdim=*/true);
  // the path through sigma^2: every x_i moves the spread
  steps.mean_n_xhat = mean(steps.n * x_hat, -1, /*keepdim=*/true);
  // [F3.6] the three paths together, scaled by rstd (N,1)
  steps.grad_input = rstd * (steps.n - steps.mean_n - x_hat * steps.mean_n_xhat);
  // [F3.6] gamma and beta are used by every row: their gradients add up over the rows
  steps.grad_weight = sum(g * x_hat, 0);
  steps.grad_bias = sum(g, 0);
}

}  // namespace ag::exercise
