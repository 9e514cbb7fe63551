// Elman RNN [F0.5]: the cell, and the loop over time that applies it.
#include "layers/rnn.hpp"

#include <cmath>

#include "autograd/ops.hpp"
#include "core/creation.hpp"
#include "core/error.hpp"
#include "layers/init.hpp"
#include "layers/linear.hpp"

namespace ag::nn {

Tensor active_steps(const std::vector<int64_t>& lengths, int64_t batch, int64_t step) {
  std::vector<real> active(static_cast<size_t>(batch), 1);
  if (!lengths.empty())
    for (int64_t b = 0; b < batch; ++b) active[b] = step < lengths[b] ? 1 : 0;
  return from_vector(active, {batch, 1});
}

void check_lengths(const std::vector<int64_t>& lengths, const Tensor& x, const char* op) {
  if (lengths.empty()) return;
  AG_CHECK(static_cast<int64_t>(lengths.size()) == x.size(0),
           "{}: {} lengths given for a batch of {} sequences {}", op, lengths.size(), x.size(0),
           describe(x));
  for (size_t b = 0; b < lengths.size(); ++b)
    AG_CHECK(lengths[b] >= 1 && lengths[b] <= x.size(1),
             "{}: length {} of sequence {} is outside 1..{} (the time steps of {})", op, lengths[b],
             b, x.size(1), describe(x));
}

void check_state(const Tensor& state, int64_t batch, int64_t hidden_size, const char* op,
                 const char* what) {
  AG_CHECK(!state.defined() || state.shape() == Shape({batch, hidden_size}),
           "{}: {} {} must be (batch = {}, hidden_size = {})", op, what, describe(state), batch,
           hidden_size);
}

std::tuple<Tensor, Tensor, Tensor, Tensor> register_recurrent_parameters(
    const ParameterRegistrar& register_fn, const std::string& suffix, int64_t gates,
    int64_t input_size, int64_t hidden_size, const char* op) {
  AG_CHECK(input_size > 0 && hidden_size > 0,
           "{}: input_size and hidden_size must be positive, got {} and {}", op, input_size,
           hidden_size);
  // PyTorch: every weight and bias ~ U(-k, k), k = 1/sqrt(hidden_size)
  const real bound = 1 / std::sqrt(static_cast<real>(hidden_size));
  auto uniform = [&](const std::string& name, const Shape& shape) {
    Tensor t = Tensor::empty(shape, op);
    init::uniform_(t, -bound, bound);
    return register_fn(name + suffix, t);
  };
  int64_t rows;  // gates * hidden_size
  AG_CHECK(!__builtin_mul_overflow(gates, hidden_size, &rows),
           "{}: hidden_size {} is too large: its {} gates have more rows than int64 counts", op,
           hidden_size, gates);
  Tensor weight_ih = uniform("weight_ih", {rows, input_size});
  Tensor weight_hh = uniform("weight_hh", {rows, hidden_size});
  Tensor bias_ih = uniform("bias_ih", {rows});
  Tensor bias_hh = uniform("bias_hh", {rows});
  return {weight_ih, weight_hh, bias_ih, bias_hh};
}

RNNCell::RNNCell(int64_t input_size, int64_t hidden_size)
    : Module("RNNCell"), input_size(input_size), hidden_size(hidden_size) {
  std::tie(weight_ih, weight_hh, bias_ih, bias_hh) = register_recurrent_parameters(
      [this](const std::string& name, Tensor t) { return register_parameter(name, t); }, "",
      /*gates=*/1, input_size, hidden_size, "RNNCell");
}

Tensor RNNCell::forward(const Tensor& x, const Tensor& h) {
  check_defined(x, "RNNCell");
  AG_CHECK(x.dim() == 2 && x.size(1) == input_size,
           "RNNCell: input {} must be (batch, input_size = {})", describe(x), input_size);
  check_state(h, x.size(0), hidden_size, "RNNCell", "state");
  const Tensor h_prev = h.defined() ? h : zeros({x.size(0), hidden_size});
  // [F0.5] h_t = tanh(W_hh h_{t-1} + W_xh x_t + b)     x (B,D), h (B,H) -> (B,H)
  return tanh(linear(x, weight_ih, bias_ih) + linear(h_prev, weight_hh, bias_hh));
}

std::string RNNCell::extra_repr() const {
  return fmt::format("input_size={}, hidden_size={}", input_size, hidden_size);
}

RNN::RNN(int64_t input_size, int64_t hidden_size)
    : Module("RNN"), input_size(input_size), hidden_size(hidden_size) {
  std::tie(weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0) = register_recurrent_parameters(
      [this](const std::string& name, Tensor t) { return register_parameter(name, t); }, "_l0",
      /*gates=*/1, input_size, hidden_size, "RNN");
}

SequenceOutput RNN::forward(const Tensor& x, const std::vector<int64_t>& lengths,
                            const Tensor& h0) {
  check_defined(x, "RNN");
  AG_CHECK(x.dim() == 3 && x.size(2) == input_size && x.size(1) >= 1,
           "RNN: input {} must be (batch, time >= 1, input_size = {})", describe(x), input_size);
  check_lengths(lengths, x, "RNN");
  const int64_t B = x.size(0), T = x.size(1);
  check_state(h0, B, hidden_size, "RNN", "initial state");
  // W_xh x_t + b_ih for every step at once: one GEMM    (B,T,D) -> (B,T,H)
  const Tensor input_part = linear(x, weight_ih_l0, bias_ih_l0);
  Tensor h = h0.defined() ? h0 : zeros({B, hidden_size});
  std::vector<Tensor> outputs;
  for (int64_t t = 0; t < T; ++t) {
    const Tensor x_t = squeeze(narrow(input_part, 1, t, 1), 1);  // (B,H)
    // [F0.5] h_t = tanh(W_hh h_{t-1} + W_xh x_t + b)
    const Tensor h_new = tanh(x_t + linear(h, weight_hh_l0, bias_hh_l0));
    if (lengths.empty()) {
      h = h_new;
      outputs.push_back(h);
    } else {  // past its end a sequence keeps its state, and outputs zeros
      const Tensor active = active_steps(lengths, B, t);
      h = where(active, h_new, h);
      outputs.push_back(h_new * active);
    }
  }
  return {stack(outputs, 1), h, Tensor()};
}

std::string RNN::extra_repr() const {
  return fmt::format("input_size={}, hidden_size={}, batch_first=true", input_size, hidden_size);
}

}  // namespace ag::nn
