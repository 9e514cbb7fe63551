// A plausible mistake in exercise 04: the tanh around the query alone,
// tanh(W_q s_t) + W_k h_j, so the keys pass through unsquashed.
// tests/exercises/check_exercises.sh expects the checker to name:
// the checker must name: hidden
#include "tutorials/exercises/04_additive_score.hpp"

namespace ag::exercise {

void additive_score(const Tensor& s, const Tensor& h, const Tensor& w_q, const Tensor& w_k,
                    const Tensor& v, AdditiveScoreSteps& steps) {
  steps.query = nn::linear(s, w_q);
  steps.keys = nn::linear(h, w_k);
  steps.hidden = tanh(unsqueeze(steps.query, 1)) + steps.keys;
  steps.scores = squeeze(nn::linear(steps.hidden, v), 2);
}

}  // namespace ag::exercise
