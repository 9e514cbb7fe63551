// Exercise 05: scaled dot-product attention with a mask [F2.3] [F4.8] [F2.4] [F2.5]
//
// Chapter 05 (docs/tutorials/05-multi-head-attention.md) builds multi-head
// attention from Attention(Q,K,V) = softmax(Q K^T / sqrt(d_k)) V, where a mask
// keeps some queries from some keys (padding, or the future). Write it:
// replace each TODO() with attograd ops (matmul, transpose, masked_fill,
// softmax, /: autograd/ops.hpp), then run
//
//   make exercise-05
//
// It runs your function and the library's (nn::scaled_dot_product_attention,
// layers/attention/scaled_dot_product.cpp) on the same seeded inputs and a padding mask,
// compares each step and the gradients, and names the first tensor that
// differs. Stuck? tutorials/exercises/solutions/05_scaled_dot_product.cpp.
#include "tutorials/exercises/05_scaled_dot_product.hpp"

#include <cmath>
#include <limits>

namespace ag::exercise {

void scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& mask, AttentionSteps& steps) {
  // [F2.3] A_ij = q_i . k_j / sqrt(d_k): every query against every key      -> (B,Tq,Tk)
  steps.scores = TODO();
  // [F4.8] a blocked score becomes -inf (-std::numeric_limits<real>::infinity()), so that
  // its weight is exactly 0                                                  (B,Tq,Tk)
  steps.masked = TODO();
  // [F2.4] H_i = softmax(A_i): each query's row over the keys (the last dim)
  steps.weights = TODO();
  // [F2.5] O_i = sum_j H_ij V_j                                  (B,Tq,Tk) x (B,Tk,d_v) -> (B,Tq,d_v)
  steps.output = TODO();
}

}  // namespace ag::exercise
