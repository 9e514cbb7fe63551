// Attention over the states of an RNN, seed 000 section 3.2.2 [F0.5]-[F0.7]:
// point attention [F0.1]-[F0.3] applied to the hidden states of a recurrent
// network instead of to the raw inputs.
//
//   x (B,T,D) --[F0.5] RNN--> h (B,T,H) --[F0.6] Linear(H,1), softmax over T--> a (B,T)
//             --sum_i a_i h_i--> context (B,H) --[F0.7] h_t + context--> output (B,T,H)
//
// The seed writes the weights a_{ti} with a t, but its scores come from a
// linear map of each state alone, so they are the same for every t: one
// context per sequence, added to every state.
#pragma once

#include <vector>

#include "layers/linear.hpp"
#include "layers/rnn.hpp"

namespace ag::nn {

struct SequenceAttentionOutput {
  Tensor output;   // (B,T,H)  h_t + c, zeros past each sequence's length
  Tensor context;  // (B,H)    c = sum_i a_i h_i
  Tensor weights;  // (B,T)    a_i, 0 past each sequence's length
  Tensor states;   // (B,T,H)  the RNN's h_t
};

class SequenceAttention : public Module {
 public:
  SequenceAttention(int64_t input_size, int64_t hidden_size);
  // x (B,T,D); lengths: each sequence's true length (empty = all T). States
  // past a sequence's length get no weight.
  SequenceAttentionOutput forward(const Tensor& x, const std::vector<int64_t>& lengths = {});

  int64_t input_size, hidden_size;
  std::shared_ptr<RNN> rnn;        // [F0.5]
  std::shared_ptr<Linear> linear;  // [F0.6] the score W_e h_t + b_e: weight (1,H), bias (1)
};

}  // namespace ag::nn
