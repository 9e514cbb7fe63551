// Exercise 06: LayerNorm's backward [F3.6] (chapter 06,
// docs/tutorials/06-tiny-transformer.md). Write it in 06_layer_norm_backward.cpp;
// `make exercise-06` compares it with the gradients of nn::layer_norm.
#pragma once

#include "layers/nn.hpp"
#include "tutorials/exercises/todo.hpp"

namespace ag::exercise {

// Each step of your backward, for the checker to compare one by one.
struct LayerNormBackwardSteps {
  Tensor n;            // g * gamma: the gradient reaching x_hat                 (N,d)
  Tensor mean_n;       // mean_j n_j, per row, kept as a dim of size 1          (N,1)
  Tensor mean_n_xhat;  // mean_j n_j x_hat_j, per row, kept                      (N,1)
  Tensor grad_input;   // dL/dx                                                  (N,d)
  Tensor grad_weight;  // dL/dgamma                                              (d)
  Tensor grad_bias;    // dL/dbeta                                               (d)
};

// The forward was y = gamma * x_hat + beta with x_hat = (x - mu) * rstd and
// rstd = 1 / sqrt(sigma^2 + eps), per row of d features: x_hat (N,d) and rstd
// (N,1) are what it saved. g = dL/dy (N,d); gamma (d).
void layer_norm_backward(const Tensor& g, const Tensor& x_hat, const Tensor& rstd,
                         const Tensor& gamma, LayerNormBackwardSteps& steps);

}  // namespace ag::exercise
