// LSTM: the gates of one step, the cell, and the loop over time. No formula
// ID: the seeds use an LSTM but give no equations for it (see lstm.hpp).
#include "layers/lstm.hpp"

#include <cmath>

#include "autograd/ops.hpp"
#include "core/creation.hpp"
#include "core/error.hpp"
#include "layers/linear.hpp"

namespace ag::nn {

RecurrentState lstm_gates(const Tensor& gates, const Tensor& c_prev, int64_t H) {
  // PyTorch's order of the four gates in (B,4H): input, forget, cell, output.
  const Tensor i = sigmoid(narrow(gates, 1, 0, H));
  const Tensor f = sigmoid(narrow(gates, 1, H, H));
  const Tensor g = tanh(narrow(gates, 1, 2 * H, H));
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
  check_defined(x, "LSTMCell");
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

LSTM::LSTM(int64_t input_size, int64_t hidden_size)
    : Module("LSTM"), input_size(input_size), hidden_size(hidden_size) {
  std::tie(weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0) = register_recurrent_parameters(
      [this](const std::string& name, Tensor t) { return register_parameter(name, t); }, "_l0",
      /*gates=*/4, input_size, hidden_size, "LSTM");
}

SequenceOutput LSTM::forward(const Tensor& x, const std::vector<int64_t>& lengths,
                             const RecurrentState& initial) {
  check_defined(x, "LSTM");
  AG_CHECK(x.dim() == 3 && x.size(2) == input_size && x.size(1) >= 1,
           "LSTM: input {} must be (batch, time >= 1, input_size = {})", describe(x), input_size);
  check_lengths(lengths, x, "LSTM");
  const int64_t B = x.size(0), T = x.size(1);
  check_state(initial.h, B, hidden_size, "LSTM", "initial h");
  check_state(initial.c, B, hidden_size, "LSTM", "initial c");
  // W_ih x_t + b_ih for every step at once: one GEMM    (B,T,D) -> (B,T,4H)
  const Tensor input_part = linear(x, weight_ih_l0, bias_ih_l0);
  Tensor h = initial.h.defined() ? initial.h : zeros({B, hidden_size});
  Tensor c = initial.c.defined() ? initial.c : zeros({B, hidden_size});
  std::vector<Tensor> outputs;
  for (int64_t t = 0; t < T; ++t) {
    const Tensor gates =
        squeeze(narrow(input_part, 1, t, 1), 1) + linear(h, weight_hh_l0, bias_hh_l0);
    RecurrentState next = lstm_gates(gates, c, hidden_size);
    if (lengths.empty()) {
      h = next.h;
      c = next.c;
      outputs.push_back(h);
    } else {  // past its end a sequence keeps its state, and outputs zeros
      const Tensor active = active_steps(lengths, B, t);
      h = where(active, next.h, h);
      c = where(active, next.c, c);
      outputs.push_back(next.h * active);
    }
  }
  return {stack(outputs, 1), h, c};
}

std::string LSTM::extra_repr() const {
  return fmt::format("input_size={}, hidden_size={}, batch_first=true", input_size, hidden_size);
}

}  // namespace ag::nn
