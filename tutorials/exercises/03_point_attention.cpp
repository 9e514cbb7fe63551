// Exercise 03: point attention's forward [F0.1]-[F0.4]
//
// Chapter 03 (docs/tutorials/03-point-attention.md) trains nn::PointAttention:
// a score per element, a softmax over the sequence, a weighted sum. Write its
// forward yourself: replace each TODO() below with attograd ops (nn::linear,
// softmax, sum, *, ...: autograd/ops.hpp, layers/basic/linear.hpp), then run
//
//   make exercise-03
//
// It runs your function and the library's (layers/attention/point_attention.cpp) on the
// same seeded inputs, compares each step and the gradients that flow back
// through your ops, and names the first tensor that differs. Stuck? The
// reference solution is tutorials/exercises/solutions/03_point_attention.cpp.
#include "tutorials/exercises/03_point_attention.hpp"

namespace ag::exercise {

void point_attention_forward(const Tensor& x, const Tensor& w_e, const Tensor& b_e,
                             PointAttentionSteps& steps) {
  // [F0.1] e_i = W_e x_i + b_e: one score per element        x (B,T,H) -> (B,T,1)
  steps.e = TODO();
  // [F0.2] a_i = exp(e_i) / sum_j exp(e_j): over the elements of each sequence (dim 1)
  steps.a = TODO();
  // [F0.4] context = sum_i a_i x_i                           (B,T,1) * (B,T,H), summed over T -> (B,H)
  steps.context = TODO();
}

}  // namespace ag::exercise
