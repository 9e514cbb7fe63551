// Elman RNN [F0.5]: the cell, and the loop over time that applies it.
#include "layers/rnn.hpp"

#include <cmath>

#include "autograd/ops.hpp"
#include "core/creation.hpp"
#include "core/error.hpp"
#include "layers/init.hpp"
#include "layers/linear.hpp"

namespace ag::nn {

namespace {

Tensor recurrent_parameter(const Shape& shape, int64_t hidden_size) {
  Tensor t = Tensor::empty(shape);
  const real bound = 1 / std::sqrt(static_cast<real>(hidden_size));
  init::uniform_(t, -bound, bound);
  return t;
}

void check_sizes(int64_t input_size, int64_t hidden_size, const char* op) {
  AG_CHECK(input_size > 0 && hidden_size > 0,
           "{}: input_size and hidden_size must be positive, got {} and {}", op, input_size,
           hidden_size);
}

}  // namespace

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

RNNCell::RNNCell(int64_t input_size, int64_t hidden_size)
    : Module("RNNCell"), input_size(input_size), hidden_size(hidden_size) {
  check_sizes(input_size, hidden_size, "RNNCell");
  weight_ih =
      register_parameter("weight_ih", recurrent_parameter({hidden_size, input_size}, hidden_size));
  weight_hh =
      register_parameter("weight_hh", recurrent_parameter({hidden_size, hidden_size}, hidden_size));
  bias_ih = register_parameter("bias_ih", recurrent_parameter({hidden_size}, hidden_size));
  bias_hh = register_parameter("bias_hh", recurrent_parameter({hidden_size}, hidden_size));
}

Tensor RNNCell::forward(const Tensor& x, const Tensor& h) {
  AG_CHECK(x.dim() == 2 && x.size(1) == input_size,
           "RNNCell: input {} must be (batch, input_size = {})", describe(x), input_size);
  AG_CHECK(!h.defined() || h.shape() == Shape({x.size(0), hidden_size}),
           "RNNCell: state {} must be (batch = {}, hidden_size = {})", describe(h), x.size(0),
           hidden_size);
  const Tensor h_prev = h.defined() ? h : zeros({x.size(0), hidden_size});
  // [F0.5] h_t = tanh(W_hh h_{t-1} + W_xh x_t + b)     x (B,D), h (B,H) -> (B,H)
  return tanh(linear(x, weight_ih, bias_ih) + linear(h_prev, weight_hh, bias_hh));
}

std::string RNNCell::extra_repr() const {
  return fmt::format("input_size={}, hidden_size={}", input_size, hidden_size);
}

RNN::RNN(int64_t input_size, int64_t hidden_size)
    : Module("RNN"), input_size(input_size), hidden_size(hidden_size) {
  check_sizes(input_size, hidden_size, "RNN");
  weight_ih_l0 = register_parameter("weight_ih_l0",
                                    recurrent_parameter({hidden_size, input_size}, hidden_size));
  weight_hh_l0 = register_parameter("weight_hh_l0",
                                    recurrent_parameter({hidden_size, hidden_size}, hidden_size));
  bias_ih_l0 = register_parameter("bias_ih_l0", recurrent_parameter({hidden_size}, hidden_size));
  bias_hh_l0 = register_parameter("bias_hh_l0", recurrent_parameter({hidden_size}, hidden_size));
}

SequenceOutput RNN::forward(const Tensor& x, const std::vector<int64_t>& lengths,
                            const Tensor& h0) {
  AG_CHECK(x.dim() == 3 && x.size(2) == input_size && x.size(1) >= 1,
           "RNN: input {} must be (batch, time >= 1, input_size = {})", describe(x), input_size);
  check_lengths(lengths, x, "RNN");
  const int64_t B = x.size(0), T = x.size(1);
  AG_CHECK(!h0.defined() || h0.shape() == Shape({B, hidden_size}),
           "RNN: initial state {} must be (batch = {}, hidden_size = {})", describe(h0), B,
           hidden_size);
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
