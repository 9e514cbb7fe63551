// Exercise 04: the additive (Bahdanau) attention score [F1.5]
//
// Chapter 04 (docs/tutorials/04-seq2seq-attention.md) decodes with attention
// over the encoder's states: at each output step the decoder's state s_t
// scores every source position j,
//
//   e_t(j) = v^T tanh(W_q s_t + W_k h_j)
//
// and the softmax of the scores weighs the states. Write the score: replace
// each TODO() with attograd ops (nn::linear, unsqueeze, tanh, squeeze, +:
// autograd/ops.hpp, layers/basic/linear.hpp), then run
//
//   make exercise-04
//
// It runs your function and the library's (nn::AdditiveScore,
// layers/attention/attention_scores.cpp) on the same seeded inputs, compares each step
// and the gradients, and names the first tensor that differs. Stuck?
// tutorials/exercises/solutions/04_additive_score.cpp.
#include "tutorials/exercises/04_additive_score.hpp"

namespace ag::exercise {

void additive_score(const Tensor& s, const Tensor& h, const Tensor& w_q, const Tensor& w_k,
                    const Tensor& v, AdditiveScoreSteps& steps) {
  // [F1.5] W_q s_t: the query projected to A features          (B,Hq) -> (B,A)
  steps.query = TODO();
  // [F1.5] W_k h_j: every key projected to A features          (B,S,Hk) -> (B,S,A)
  steps.keys = TODO();
  // [F1.5] tanh(W_q s_t + W_k h_j): the query added to each of the S keys (mind the shapes:
  // (B,A) and (B,S,A) line up from the right, so give the query a dim for S first)
  steps.hidden = TODO();
  // [F1.5] e_t(j) = v^T tanh(...): one number per position     (B,S,A) -> (B,S)
  steps.scores = TODO();
}

}  // namespace ag::exercise
