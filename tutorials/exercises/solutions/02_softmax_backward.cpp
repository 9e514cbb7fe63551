// Exercise 02, solved: softmax's backward [F0.2], the formula that
// autograd/ops_softmax.cpp records in reference mode. `make solution-02` checks it.
#include "tutorials/exercises/02_softmax_backward.hpp"

namespace ag::exercise {

void softmax_backward(const Tensor& g, const Tensor& y, int64_t dim, SoftmaxBackwardSteps& steps) {
  // sum_i g_i y_i: how much the gradient leans on the probabilities as a whole
  steps.dot = sum(g * y, dim, /*keepdim=*/true);
  // dL/dx_j = y_j (g_j - sum_i g_i y_i): (N,C) - (N,1) broadcasts along dim
  steps.grad_input = y * (g - steps.dot);
}

}  // namespace ag::exercise
