// A plausible mistake in exercise 02: only the diagonal of the Jacobian,
// dy_j/dx_j = y_j (1 - y_j), as if each output depended on its own input
// alone. tests/exercises/check_exercises.sh expects the checker to name:
// the checker must name: grad_input
#include "tutorials/exercises/02_softmax_backward.hpp"

namespace ag::exercise {

void softmax_backward(const Tensor& g, const Tensor& y, int64_t dim, SoftmaxBackwardSteps& steps) {
  steps.dot = sum(g * y, dim, /*keepdim=*/true);
  steps.grad_input = g * y * (1 - y);
}

}  // namespace ag::exercise
