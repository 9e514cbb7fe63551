// Exercise 05: scaled dot-product attention with a mask [F2.3] [F4.8] [F2.4]
// [F2.5] (chapter 05, docs/tutorials/05-multi-head-attention.md). Write it in
// 05_scaled_dot_product.cpp; `make exercise-05` compares each step with
// nn::scaled_dot_product_attention.
#pragma once

#include "layers/nn.hpp"
#include "tutorials/exercises/todo.hpp"

namespace ag::exercise {

// Each step of your attention, for the checker to compare one by one.
struct AttentionSteps {
  Tensor scores;   // Q K^T / sqrt(d_k)                        (B,Tq,Tk)
  Tensor masked;   // the scores, -inf where the mask is 1      (B,Tq,Tk)
  Tensor weights;  // softmax over the keys                     (B,Tq,Tk)
  Tensor output;   // the weights times V                       (B,Tq,d_v)
};

// q (B,Tq,d_k), k (B,Tk,d_k), v (B,Tk,d_v); mask: 1 = blocked, 0 = open, of a
// shape that broadcasts against the scores (here (B,1,Tk): padding).
void scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& mask, AttentionSteps& steps);

}  // namespace ag::exercise
