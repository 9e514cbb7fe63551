// Exercise 03, solved: point attention's forward [F0.1]-[F0.4], as
// layers/attention/point_attention.cpp computes it. `make solution-03` checks it.
#include "tutorials/exercises/03_point_attention.hpp"

namespace ag::exercise {

void point_attention_forward(const Tensor& x, const Tensor& w_e, const Tensor& b_e,
                             PointAttentionSteps& steps) {
  // [F0.1] e_i = W_e x_i + b_e: a Linear(H,1) works on the last dim, so on every element
  steps.e = nn::linear(x, w_e, b_e);
  // [F0.2] a_i = exp(e_i) / sum_j exp(e_j): the elements are dim 1 of (B,T,1)
  steps.a = softmax(steps.e, /*dim=*/1);
  // [F0.4] context = sum_i a_i x_i: (B,T,1) broadcasts over the H features
  steps.context = sum(steps.a * x, /*dim=*/1);
}

}  // namespace ag::exercise
