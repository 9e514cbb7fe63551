// Exercise 04, solved: the additive score [F1.5], as nn::AdditiveScore
// computes it in reference mode (layers/attention/attention_scores.cpp). `make
// solution-04` checks it.
#include "tutorials/exercises/04_additive_score.hpp"

namespace ag::exercise {

void additive_score(const Tensor& s, const Tensor& h, const Tensor& w_q, const Tensor& w_k,
                    const Tensor& v, AdditiveScoreSteps& steps) {
  // [F1.5] W_q s_t                      (B,Hq) -> (B,A)
  steps.query = nn::linear(s, w_q);
  // [F1.5] W_k h_j, all j at once: linear works on the last dim     (B,S,Hk) -> (B,S,A)
  steps.keys = nn::linear(h, w_k);
  // [F1.5] (B,1,A) + (B,S,A): the same query added to every key
  steps.hidden = tanh(unsqueeze(steps.query, 1) + steps.keys);
  // [F1.5] v^T hidden: a Linear(A,1) without bias, then drop the size-1 dim    (B,S,1) -> (B,S)
  steps.scores = squeeze(nn::linear(steps.hidden, v), 2);
}

}  // namespace ag::exercise
