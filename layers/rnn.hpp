// Elman RNN, seed 000 section 3.2.2 step 1 [F0.5], as torch.nn.RNNCell and
// torch.nn.RNN (tanh, batch_first = true, one layer).
//
// The seed writes h_t = f(W h_{t-1} + b + x_t): the input is added with no
// matrix of its own, so it only works when the input size equals the hidden
// size. The standard (Elman) form gives the input its own matrix:
//
//   h_t = tanh(W_hh h_{t-1} + W_xh x_t + b)        b = b_ih + b_hh (PyTorch keeps two biases)
//
// and the seed's form is the case W_xh = I, b_ih = 0 (a test shows it).
// Parameters have PyTorch's names and shapes (weight_ih (H,D), weight_hh (H,H),
// bias_ih (H), bias_hh (H); with the suffix _l0 in RNN), so weights load from
// a PyTorch state_dict by name.
//
// The shapes shared by RNN and LSTM (layers/lstm.hpp) are here: a batch of
// sequences x (B,T,D) gives every state, output (B,T,H), and the last ones.
#pragma once

#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "layers/module.hpp"

namespace ag::nn {

// The state a recurrent cell carries from one step to the next: h (B,H), and
// for an LSTM also the cell state c (B,H) (undefined for an RNN).
struct RecurrentState {
  Tensor h;
  Tensor c;
};

// What RNN and LSTM return for x (B,T,D):
//   output (B,T,H)  h_t of every step; zeros at steps t >= lengths[b] (padding),
//                   as PyTorch's pad_packed_sequence gives them
//   h_n (B,H)       the last state of each sequence: at step lengths[b] - 1
//   c_n (B,H)       the LSTM's last cell state (undefined for an RNN)
struct SequenceOutput {
  Tensor output;
  Tensor h_n;
  Tensor c_n;
};

// (B,1): 1 where step t is inside sequence b (t < lengths[b]), 0 in its padding.
// Empty lengths mean every sequence has the full length.
Tensor active_steps(const std::vector<int64_t>& lengths, int64_t batch, int64_t step);
// Checks lengths against x (B,T,...) and names `op` in the error.
void check_lengths(const std::vector<int64_t>& lengths, const Tensor& x, const char* op);
// Checks a state given to `op`: undefined (it starts at zeros) or (batch,
// hidden_size); `what` names it in the error ("state", "initial c", ...).
void check_state(const Tensor& state, int64_t batch, int64_t hidden_size, const char* op,
                 const char* what);

// The parameters every PyTorch recurrent module has, for `gates` gates (1 for
// an RNN; 4 for an LSTM, whose i, f, g, o rows are stacked):
//   weight_ih (gates*H, D), weight_hh (gates*H, H), bias_ih (gates*H), bias_hh (gates*H)
// each ~ U(-1/sqrt(H), 1/sqrt(H)) as PyTorch initialises them, created in that
// order, named as PyTorch names them plus `suffix` ("" in a cell, "_l0" for
// the one layer of RNN and LSTM) and registered with `register_fn` (the
// module's register_parameter). `op` names the module in the size check.
using ParameterRegistrar = std::function<Tensor(const std::string& name, Tensor value)>;
std::tuple<Tensor, Tensor, Tensor, Tensor> register_recurrent_parameters(
    const ParameterRegistrar& register_fn, const std::string& suffix, int64_t gates,
    int64_t input_size, int64_t hidden_size, const char* op);

class RNNCell : public Module {
 public:
  // PyTorch's initialisation: every weight and bias ~ U(-1/sqrt(H), 1/sqrt(H)).
  RNNCell(int64_t input_size, int64_t hidden_size);
  // x (B,D), h (B,H) (undefined = zeros) -> h' (B,H)
  Tensor forward(const Tensor& x, const Tensor& h = Tensor());
  std::string extra_repr() const override;

  int64_t input_size, hidden_size;
  Tensor weight_ih, weight_hh, bias_ih, bias_hh;
};

class RNN : public Module {
 public:
  RNN(int64_t input_size, int64_t hidden_size);
  // x (B,T,D); lengths: the true length of each sequence (padding after it),
  // empty = all T; h0 (B,H), undefined = zeros. A sequence's state stops
  // changing after its last step, so h_n is the state at its own end.
  SequenceOutput forward(const Tensor& x, const std::vector<int64_t>& lengths = {},
                         const Tensor& h0 = Tensor());
  std::string extra_repr() const override;

  int64_t input_size, hidden_size;
  Tensor weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0;
};

}  // namespace ag::nn
