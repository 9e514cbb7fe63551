// LSTM: the gates of one step, the cell, and the step of one layer in one
// direction (the loop over layers, directions and time is RNNBase::run, in
// rnn.cpp). No formula ID: the seeds use an LSTM but give no equations for it
// (see lstm.hpp).
#include "layers/lstm.hpp"

#include <cmath>

#include "autograd/ops.hpp"
#include "core/creation.hpp"
#include "core/error.hpp"
#include "layers/linear.hpp"

namespace ag::nn {

RecurrentState lstm_gates(const Tensor& gates, const Tensor& c_prev, int64_t H) {
  // PyTorch's order of the four gates in (B,4H): input, forget, cell, output.
  // i = sigmoid(W_ii x_t + b_ii + W_hi h_{t-1} + b_hi): how much of the candidate to write
  const Tensor i = sigmoid(narrow(gates, 1, 0, H));
  // f = sigmoid(W_if x_t + b_if + W_hf h_{t-1} + b_hf): how much of the old memory to keep
  const Tensor f = sigmoid(narrow(gates, 1, H, H));
  // g = tanh(W_ig x_t + b_ig + W_hg h_{t-1} + b_hg): the candidate memory
  const Tensor g = tanh(narrow(gates, 1, 2 * H, H));
  // o = sigmoid(W_io x_t + b_io + W_ho h_{t-1} + b_ho): how much of the memory to show
  const Tensor o = sigmoid(narrow(gates, 1, 3 * H, H));
  // c_t = f * c_{t-1} + i * g: forget part of the old memory, write the new candidate
  const Tensor c = f * c_prev + i * g;
  // h_t = o * tanh(c_t): the part of the memory the output gate lets out
  return {o * tanh(c), c};
}

LSTMCell::LSTMCell(int64_t input_size, int64_t hidden_size)
    : Module("LSTMCell"), input_size(input_size), hidden_size(hidden_size) {
  std::tie(weight_ih, weight_hh, bias_ih, bias_hh) = register_recurrent_parameters(
      [this](const std::string& name, Tensor t) { return register_parameter(name, t); }, "",
      /*gates=*/4, input_size, hidden_size, "LSTMCell");
}

RecurrentState LSTMCell::forward(const Tensor& x, const RecurrentState& state) {
  AG_CHECK(x.dim() == 2 && x.size(1) == input_size,
           "LSTMCell: input {} must be (batch, input_size = {})", describe(x), input_size);
  const int64_t B = x.size(0);
  check_state(state.h, B, hidden_size, "LSTMCell", "h");
  check_state(state.c, B, hidden_size, "LSTMCell", "c");
  const Tensor h = state.h.defined() ? state.h : zeros({B, hidden_size});
  const Tensor c = state.c.defined() ? state.c : zeros({B, hidden_size});
  // [i; f; g; o] = W_ih x + b_ih + W_hh h + b_hh          (B,D), (B,H) -> (B,4H)
  const Tensor gates = linear(x, weight_ih, bias_ih) + linear(h, weight_hh, bias_hh);
  return lstm_gates(gates, c, hidden_size);
}

std::string LSTMCell::extra_repr() const {
  return fmt::format("input_size={}, hidden_size={}", input_size, hidden_size);
}

LSTM::LSTM(int64_t input_size, int64_t hidden_size, int64_t num_layers, real dropout,
           bool bidirectional)
    : RNNBase("LSTM", /*gates=*/4, input_size, hidden_size, num_layers, dropout, bidirectional) {}

SequenceOutput LSTM::forward(const Tensor& x, const std::vector<int64_t>& lengths,
                             const RecurrentState& initial) {
  check_input(x, lengths);
  check_initial(initial.h, x.size(0), "h0");
  check_initial(initial.c, x.size(0), "c0");
  return run(x, lengths, initial);
}

RecurrentState LSTM::step(const Tensor& input_part, const RecurrentState& previous,
                          const RecurrentWeights& w) const {
  // [i; f; g; o] = (W_ih x_t + b_ih) + W_hh h_{t-1} + b_hh      (B,4H) + (B,H) -> (B,4H)
  const Tensor gates = input_part + linear(previous.h, w.weight_hh, w.bias_hh);
  return lstm_gates(gates, previous.c, hidden_size);
}

}  // namespace ag::nn
