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
//
// Step 1 of the seed makes the states "with an RNN or a CNN"; the encoder is
// chosen when the layer is made (the submodule is named after it):
//   SequenceEncoder::RNN     rnn:  nn::RNN(D, H), h_t = [F0.5]
//   SequenceEncoder::LSTM    lstm: nn::LSTM(D, H), h_t of the LSTM
//   SequenceEncoder::Conv1d  conv: nn::Conv1d(D, H, K, padding (K-1)/2),
//                            h_t = tanh(conv(x)_t), made from the K steps around t
// An RNN's or LSTM's h_t has read x_1..x_t; a convolution's state sees only its
// window, and the attention's context is what joins the whole sequence.
#pragma once

#include <vector>

#include "layers/basic/conv1d.hpp"
#include "layers/basic/linear.hpp"
#include "layers/recurrent/lstm.hpp"
#include "layers/recurrent/rnn.hpp"

namespace ag::nn {

enum class SequenceEncoder { RNN, LSTM, Conv1d };

struct SequenceAttentionOutput {
  Tensor output;   // (B,T,H)  h_t + c, zeros past each sequence's length
  Tensor context;  // (B,H)    c = sum_i a_i h_i
  Tensor weights;  // (B,T)    a_i, 0 past each sequence's length
  Tensor states;   // (B,T,H)  the encoder's h_t
};

class SequenceAttention : public Module {
 public:
  // kernel_size (odd, so that T states come out of T steps) is the Conv1d's only.
  SequenceAttention(int64_t input_size, int64_t hidden_size,
                    SequenceEncoder encoder = SequenceEncoder::RNN, int64_t kernel_size = 3);
  // x (B,T,D); lengths: each sequence's true length (empty = all T). States
  // past a sequence's length get no weight; the convolution reads zeros there,
  // as it reads its padding, so padding a sequence changes none of its states.
  SequenceAttentionOutput forward(const Tensor& x, const std::vector<int64_t>& lengths = {});
  // Step 1 alone: the encoder's states h_t (B,T,H).
  Tensor encode(const Tensor& x, const std::vector<int64_t>& lengths = {});
  std::string extra_repr() const override;

  int64_t input_size, hidden_size;
  SequenceEncoder encoder;
  int64_t kernel_size;             // Conv1d only
  std::shared_ptr<RNN> rnn;        // [F0.5], SequenceEncoder::RNN (else null)
  std::shared_ptr<LSTM> lstm;      // SequenceEncoder::LSTM (else null)
  std::shared_ptr<Conv1d> conv;    // SequenceEncoder::Conv1d (else null)
  std::shared_ptr<Linear> linear;  // [F0.6] the score W_e h_t + b_e: weight (1,H), bias (1)
};

// "RNN", "LSTM", "Conv1d"
const char* encoder_name(SequenceEncoder encoder);

}  // namespace ag::nn
