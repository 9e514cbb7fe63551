// Exercise 02: softmax's backward [F0.2]
//
// Chapter 02 (docs/tutorials/02-linear-softmax.md) turns logits into class
// probabilities with y = softmax(x) and lets backward() find the gradients.
// Write the link of the chain rule that softmax adds: given y and g = dL/dy,
// return dL/dx. With y_i = exp(x_i) / sum_k exp(x_k):
//
//   dy_i/dx_j = y_i (delta_ij - y_j)
//   dL/dx_j   = sum_i g_i dy_i/dx_j = y_j (g_j - sum_i g_i y_i)
//
// Replace each TODO() with attograd ops (sum, *, -: autograd/ops.hpp), then run
//
//   make exercise-02
//
// It checks your two steps against the library's softmax backward
// (autograd/ops_softmax.cpp), then plugs your backward into one training step
// of chapter 02's linear softmax classifier and compares the weights'
// gradients. Stuck? tutorials/exercises/solutions/02_softmax_backward.cpp.
#include "tutorials/exercises/02_softmax_backward.hpp"

namespace ag::exercise {

void softmax_backward(const Tensor& g, const Tensor& y, int64_t dim, SoftmaxBackwardSteps& steps) {
  // sum_i g_i y_i, along dim, kept as a dim of size 1 so it broadcasts back    (N,C) -> (N,1)
  steps.dot = TODO();
  // dL/dx_j = y_j (g_j - sum_i g_i y_i)                                        (N,C)
  steps.grad_input = TODO();
}

}  // namespace ag::exercise
