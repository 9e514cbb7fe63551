// LSTM, as torch.nn.LSTMCell and torch.nn.LSTM (batch_first = true,
// num_layers, dropout, bidirectional): the recurrent unit of the seeds' code
// (seed 001's Keras LSTM encoder and decoder, seed 004's stacked LSTMCells).
// The seeds use it without writing its equations, so no formula ID of
// docs/formulas.md is computed here; the gates below are PyTorch's (and
// Hochreiter and Schmidhuber's).
//
// PyTorch's gate layout: the four gates are stacked in the order input,
// forget, cell (candidate), output, so one GEMM computes them all:
//
//   [i; f; g; o] = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh     (B,4H)
//   i = sigmoid(.)  f = sigmoid(.)  g = tanh(.)  o = sigmoid(.)
//   c_t = f * c_{t-1} + i * g
//   h_t = o * tanh(c_t)
//
// Parameters as PyTorch names them: weight_ih (4H,D), weight_hh (4H,H),
// bias_ih (4H), bias_hh (4H) (with the suffixes _l0, _l0_reverse, _l1, ... in
// LSTM), each initialised U(-1/sqrt(H), 1/sqrt(H)); a PyTorch state_dict
// loads by name. Layers and directions stack as in RNN (layers/recurrent/rnn.hpp), and
// c_n has h_n's shape (L*dirs, B, H).
//
// Two modes (core/mode.hpp): reference mode runs the formulas above op by op
// (lstm_gates); fast mode, the default, runs a cell's step, and all the steps
// of one layer in one direction, as one fused op with its closed-form
// backward (lstm.cpp, beside the plain code).
#pragma once

#include "layers/recurrent/rnn.hpp"

namespace ag::nn {

class LSTMCell : public Module {
 public:
  LSTMCell(int64_t input_size, int64_t hidden_size);
  // x (B,D), state {h (B,H), c (B,H)} (undefined = zeros) -> {h', c'}
  RecurrentState forward(const Tensor& x, const RecurrentState& state = {});
  std::string extra_repr() const override;

  int64_t input_size, hidden_size;
  Tensor weight_ih, weight_hh, bias_ih, bias_hh;
};

// One LSTM step given the gates' pre-activations (B,4H) and c_{t-1} (B,H):
// shared by LSTMCell and LSTM.
RecurrentState lstm_gates(const Tensor& gates, const Tensor& c_prev, int64_t hidden_size);

class LSTM : public RNNBase {
 public:
  // PyTorch's nn.LSTM(input_size, hidden_size, num_layers, dropout=dropout,
  // bidirectional=bidirectional, batch_first=True).
  LSTM(int64_t input_size, int64_t hidden_size, int64_t num_layers = 1, real dropout = 0,
       bool bidirectional = false);
  // x (B,T,D); lengths as in RNN::forward (empty = all T); initial state
  // {h0, c0}, (L*dirs, B, H) each, undefined = zeros. Returns output
  // (B,T,dirs*H), h_n and c_n (L*dirs, B, H).
  SequenceOutput forward(const Tensor& x, const std::vector<int64_t>& lengths = {},
                         const RecurrentState& initial = {});
  // One step of one layer in one direction, from input_part = W_ih x_t + b_ih (B,4H):
  //   [i; f; g; o] = input_part + W_hh h_{t-1} + b_hh        (B,4H)
  //   c_t = f * c_{t-1} + i * g,  h_t = o * tanh(c_t)         (lstm_gates)
  RecurrentState step(const Tensor& input_part, const RecurrentState& previous,
                      const RecurrentWeights& w) const override;

 protected:
  // Fast mode: the T steps of one layer in one direction as one fused op.
  SequenceOutput steps_fused(const Tensor& input_part, const std::vector<int64_t>& lengths,
                             const RecurrentState& start, const RecurrentWeights& w,
                             bool reverse) const override;
};

}  // namespace ag::nn
