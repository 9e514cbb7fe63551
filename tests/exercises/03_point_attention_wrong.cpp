// A plausible mistake in exercise 03: the softmax over the features (dim 2,
// of size 1 here) instead of the elements (dim 1), so every weight is 1.
// tests/exercises/check_exercises.sh expects the checker to name this step:
// the checker must name: a
#include "tutorials/exercises/03_point_attention.hpp"

namespace ag::exercise {

void point_attention_forward(const Tensor& x, const Tensor& w_e, const Tensor& b_e,
                             PointAttentionSteps& steps) {
  steps.e = nn::linear(x, w_e, b_e);
  steps.a = softmax(steps.e, /*dim=*/2);
  steps.context = sum(steps.a * x, /*dim=*/1);
}

}  // namespace ag::exercise
