// Exercise 04: the additive (Bahdanau) attention score [F1.5] (chapter 04,
// docs/tutorials/04-seq2seq-attention.md). Write it in 04_additive_score.cpp;
// `make exercise-04` compares each step with nn::AdditiveScore.
#pragma once

#include "layers/nn.hpp"
#include "tutorials/exercises/todo.hpp"

namespace ag::exercise {

// Each step of your score, for the checker to compare one by one.
struct AdditiveScoreSteps {
  Tensor query;   // W_q s_t                       (B,A)
  Tensor keys;    // W_k h_j, for every j          (B,S,A)
  Tensor hidden;  // tanh(W_q s_t + W_k h_j)       (B,S,A)
  Tensor scores;  // e_t(j) = v^T hidden           (B,S)
};

// s (B,Hq): the decoder's state; h (B,S,Hk): the S encoder states; w_q (A,Hq),
// w_k (A,Hk), v (1,A): the weights of Linear layers without bias, as
// nn::AdditiveScore's query_layer, key_layer and weight_layer hold them.
void additive_score(const Tensor& s, const Tensor& h, const Tensor& w_q, const Tensor& w_k,
                    const Tensor& v, AdditiveScoreSteps& steps);

}  // namespace ag::exercise
