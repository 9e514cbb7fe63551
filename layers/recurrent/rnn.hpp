// Elman RNN, seed 000 section 3.2.2 step 1 [F0.5], as torch.nn.RNNCell and
// torch.nn.RNN (tanh, batch_first = true, num_layers, dropout, bidirectional).
//
// The seed writes h_t = f(W h_{t-1} + b + x_t): the input is added with no
// matrix of its own, so it only works when the input size equals the hidden
// size. The standard (Elman) form gives the input its own matrix:
//
//   h_t = tanh(W_hh h_{t-1} + W_xh x_t + b)        b = b_ih + b_hh (PyTorch keeps two biases)
//
// and the seed's form is the case W_xh = I, b_ih = 0 (a test shows it).
// Parameters have PyTorch's names and shapes (weight_ih (H,D), weight_hh (H,H),
// bias_ih (H), bias_hh (H); with the suffixes _l0, _l0_reverse, _l1, ... in
// RNN), so weights load from a PyTorch state_dict by name.
//
// Stacked and bidirectional, as PyTorch defines them (shared with LSTM, in
// RNNBase below). With num_layers = L, layer l > 0 reads the outputs of layer
// l-1 (with dropout on them in training, if dropout > 0), and the output is
// the last layer's. With bidirectional, every layer runs twice: forward, t =
// 1..T, and reverse, t = T..1, with weights of its own (suffix _reverse); its
// output at step t is the two states side by side, [->h_t; <-h_t] (2H). So
// for x (B,T,D), with dirs = 2 if bidirectional else 1:
//
//   output (B,T,dirs*H)     the last layer's states at every step
//   h_n (L*dirs, B, H)      the last state of every layer and direction, row
//                           l*dirs + d (d = 0 forward, 1 reverse); the
//                           reverse direction's last state is at t = 1
//   parameters              weight_ih_l{l}, weight_hh_l{l}, bias_ih_l{l},
//                           bias_hh_l{l}, then the same + "_reverse", layer by
//                           layer; weight_ih of layer l > 0 is (H, dirs*H)
//
// Two modes (core/mode.hpp): reference mode runs the formula op by op, one
// step() at a time; fast mode, the default, runs a cell's step, and all the
// steps of one layer in one direction, as one fused op with its closed-form
// backward (rnn.cpp, beside the plain code; the LSTM's in lstm.cpp).
//
// The shapes shared by RNN and LSTM (layers/recurrent/lstm.hpp) are here.
#pragma once

#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "layers/framework/module.hpp"

namespace ag::nn {

// The state a recurrent cell carries from one step to the next: h (B,H), and
// for an LSTM also the cell state c (B,H) (undefined for an RNN).
struct RecurrentState {
  Tensor h;
  Tensor c;
};

// What RNN and LSTM return for x (B,T,D), dirs = 2 if bidirectional else 1:
//   output (B,T,dirs*H)  h_t of every step of the last layer; zeros at steps
//                        t >= lengths[b] (padding), as PyTorch's
//                        pad_packed_sequence gives them
//   h_n (L*dirs,B,H)     the last state of each layer, direction and sequence:
//                        forward at step lengths[b] - 1, reverse at step 0
//   c_n (L*dirs,B,H)     the LSTM's last cell states (undefined for an RNN)
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

// The four tensors of one layer in one direction of RNN or LSTM.
struct RecurrentWeights {
  Tensor weight_ih;  // (gates*H, D) for layer 0, (gates*H, dirs*H) above it
  Tensor weight_hh;  // (gates*H, H)
  Tensor bias_ih;    // (gates*H)
  Tensor bias_hh;    // (gates*H)
};

// The parameters every PyTorch recurrent module has, for `gates` gates (1 for
// an RNN; 4 for an LSTM, whose i, f, g, o rows are stacked):
//   weight_ih (gates*H, D), weight_hh (gates*H, H), bias_ih (gates*H), bias_hh (gates*H)
// each ~ U(-1/sqrt(H), 1/sqrt(H)) as PyTorch initialises them, created in that
// order, named as PyTorch names them plus `suffix` ("" in a cell; "_l0",
// "_l0_reverse", "_l1", ... in RNN and LSTM) and registered with `register_fn` (the
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

// What RNN and LSTM share, as torch.nn.RNNBase: the sizes, the parameters of
// every layer and direction, and the loop over layers, directions and time
// steps (run). Each of them writes step: one time step of one layer in one
// direction, its formula line by line.
class RNNBase : public Module {
 public:
  int64_t num_directions() const { return bidirectional ? 2 : 1; }
  // One time step of one layer in one direction: from input_part = W_ih x_t +
  // b_ih (B, gates*H) (computed for every step of the layer at once) and the
  // previous state (B,H) to the new state.
  virtual RecurrentState step(const Tensor& input_part, const RecurrentState& previous,
                              const RecurrentWeights& w) const = 0;
  std::string extra_repr() const override;

  int64_t input_size, hidden_size, num_layers;
  real dropout;  // on the outputs of every layer but the last, in training only
  bool bidirectional;
  // Layer l, direction d (0 forward, 1 reverse) is weights[l * num_directions() + d]:
  // the order of h_n's rows and of PyTorch's state_dict.
  std::vector<RecurrentWeights> weights;
  // weights[0]'s tensors (layer 0, forward), by their PyTorch names.
  Tensor weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0;

 protected:
  // gates: 1 for an RNN, 4 for an LSTM (which also carries a cell state c).
  RNNBase(const char* type, int64_t gates, int64_t input_size, int64_t hidden_size,
          int64_t num_layers, real dropout, bool bidirectional);
  // Checks x and lengths, and an initial state's part `what` ("h0", "c0"):
  // undefined or (L*dirs, B, H). The errors name the module (RNN or LSTM).
  void check_input(const Tensor& x, const std::vector<int64_t>& lengths) const;
  void check_initial(const Tensor& state, int64_t batch, const char* what) const;
  // Every layer in every direction over x (B,T,D), from `initial` ((L*dirs,B,H)
  // each; undefined = zeros).
  SequenceOutput run(const Tensor& x, const std::vector<int64_t>& lengths,
                     const RecurrentState& initial);
  // The T steps of one layer in one direction (reverse: from t = T to 1), one
  // step() at a time: from input_part (B,T,gates*H) (W_ih x_t + b_ih of every
  // step) and the state it starts from (B,H) each (undefined = zeros) to its
  // output (B,T,H) (zeros in the padding) and last state h_n, c_n (B,H).
  // What reference mode runs.
  SequenceOutput steps(const Tensor& input_part, const std::vector<int64_t>& lengths,
                       const RecurrentState& start, const RecurrentWeights& w, bool reverse) const;
  // Fast mode's twin of steps(), the same in and out: the steps as one fused
  // op, written beside step() by RNN and LSTM (this default runs steps()).
  virtual SequenceOutput steps_fused(const Tensor& input_part, const std::vector<int64_t>& lengths,
                                     const RecurrentState& start, const RecurrentWeights& w,
                                     bool reverse) const;

 private:
  bool has_cell_state_;
};

class RNN : public RNNBase {
 public:
  // PyTorch's nn.RNN(input_size, hidden_size, num_layers, dropout=dropout,
  // bidirectional=bidirectional, batch_first=True); tanh.
  RNN(int64_t input_size, int64_t hidden_size, int64_t num_layers = 1, real dropout = 0,
      bool bidirectional = false);
  // x (B,T,D); lengths: the true length of each sequence (padding after it),
  // empty = all T; h0 (L*dirs, B, H), undefined = zeros. A sequence's forward
  // state stops changing after its last step, so h_n is the state at its own
  // end; its reverse direction starts at that last step, from h0.
  SequenceOutput forward(const Tensor& x, const std::vector<int64_t>& lengths = {},
                         const Tensor& h0 = Tensor());
  // The Elman step [F0.5], h_t = tanh(W_hh h_{t-1} + W_xh x_t + b); c stays undefined.
  RecurrentState step(const Tensor& input_part, const RecurrentState& previous,
                      const RecurrentWeights& w) const override;

 protected:
  // Fast mode: the T steps of one layer in one direction as one fused op.
  SequenceOutput steps_fused(const Tensor& input_part, const std::vector<int64_t>& lengths,
                             const RecurrentState& start, const RecurrentWeights& w,
                             bool reverse) const override;
};

}  // namespace ag::nn
