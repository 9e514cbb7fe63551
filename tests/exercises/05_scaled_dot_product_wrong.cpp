// A plausible mistake in exercise 05: dividing by d_k instead of sqrt(d_k).
// tests/exercises/check_exercises.sh expects the checker to name:
// the checker must name: scores
#include "tutorials/exercises/05_scaled_dot_product.hpp"

#include <limits>

namespace ag::exercise {

void scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                  const Tensor& mask, AttentionSteps& steps) {
  const real d_k = static_cast<real>(q.size(-1));
  steps.scores = matmul(q, transpose(k, -2, -1)) / d_k;
  steps.masked = masked_fill(steps.scores, mask, -std::numeric_limits<real>::infinity());
  steps.weights = softmax(steps.masked, -1);
  steps.output = matmul(steps.weights, v);
}

}  // namespace ag::exercise
