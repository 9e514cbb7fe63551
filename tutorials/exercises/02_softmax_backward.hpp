// Exercise 02: softmax's backward [F0.2] (chapter 02,
// docs/tutorials/02-linear-softmax.md). Write it in 02_softmax_backward.cpp;
// `make exercise-02` compares it with the derivative ag::softmax records.
#pragma once

#include "layers/nn.hpp"
#include "tutorials/exercises/todo.hpp"

namespace ag::exercise {

// Each step of your backward, for the checker to compare one by one.
struct SoftmaxBackwardSteps {
  Tensor dot;         // sum_i g_i y_i along dim, kept as a dim of size 1   (N,1) for (N,C)
  Tensor grad_input;  // dL/dx                                             (N,C)
};

// y = softmax(x, dim), what the forward computed; g = dL/dy, the gradient
// arriving from the ops after it. Both of y's shape.
void softmax_backward(const Tensor& g, const Tensor& y, int64_t dim, SoftmaxBackwardSteps& steps);

}  // namespace ag::exercise
