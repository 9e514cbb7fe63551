// A plausible mistake in exercise 06: the path through sigma^2 forgotten,
// as if the spread did not depend on x: dL/dx_i = rstd * (n_i - mean_n).
// tests/exercises/check_exercises.sh expects the checker to name:
// the checker must name: grad_input
#include "tutorials/exercises/06_layer_norm_backward.hpp"

namespace ag::exercise {

void layer_norm_backward(const Tensor& g, const Tensor& x_hat, const Tensor& rstd,
                         const Tensor& gamma, LayerNormBackwardSteps& steps) {
  steps.n = g * gamma;
  steps.mean_n = mean(steps.n, -1, /*keepdim=*/true);
  steps.mean_n_xhat = mean(steps.n * x_hat, -1, /*keepdim=*/true);
  steps.grad_input = rstd * (steps.n - steps.mean_n);
  steps.grad_weight = sum(g * x_hat, 0);
  steps.grad_bias = sum(g, 0);
}

}  // namespace ag::exercise
