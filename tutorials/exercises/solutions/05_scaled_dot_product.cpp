// Exercise 05, solved: scaled dot-product attention with a mask, as
// nn::scaled_dot_product_attention computes it in reference mode
// (layers/attention/scaled_dot_product.cpp). `make solution-05` checks it.
#include "tutorials/exercises/05_scaled_dot_product.hpp"

#include <cmath>
#include <limits>

namespace ag::exercise {

void scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& mask, AttentionSteps& steps) {
  const real minus_infinity = -std::numeric_limits<real>::infinity();
  const real d_k = static_cast<real>(q.size(-1));
  // [F2.3] (B,Tq,d_k) x (B,d_k,Tk): the keys transposed in their last two dims
  steps.scores = matmul(q, transpose(k, -2, -1)) / std::sqrt(d_k);
  // [F4.8] the mask (B,1,Tk) broadcasts over the queries
  steps.masked = masked_fill(steps.scores, mask, minus_infinity);
  // [F2.4] over the keys
  steps.weights = softmax(steps.masked, -1);
  // [F2.5]
  steps.output = matmul(steps.weights, v);
}

}  // namespace ag::exercise
