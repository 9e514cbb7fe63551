// Elman RNN [F0.5]: the cell, its step, and the loop over layers, directions
// and time that RNN and LSTM share (RNNBase::run), each as the formula writes
// it, and their fast twin: the steps of the cell as one fused op
// (rnn_steps_fused).
#include "layers/recurrent/rnn.hpp"

#include <algorithm>
#include <cmath>

#include "autograd/node.hpp"
#include "autograd/ops.hpp"
#include "core/blas.hpp"
#include "core/creation.hpp"
#include "core/error.hpp"
#include "core/fast_math.hpp"
#include "core/kernels.hpp"
#include "core/mode.hpp"
#include "core/simd.hpp"
#include "layers/basic/dropout.hpp"
#include "layers/basic/linear.hpp"
#include "layers/framework/init.hpp"

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

namespace {

// --- fast mode: the steps of the cell as one op ------------------------------------
//
// The plain code records, per step, a narrow of the input projection, a
// Linear, an add and a tanh (and in RNN a stack of the outputs at the end).
// rnn_steps_fused runs T steps of one layer in one direction (T = 1 for a
// cell) and records one node, as lstm_steps_fused does for the LSTM (lstm.cpp):
//
//   forward, per step   a_t = (W_xh x_t + b_ih) + b_hh + W_hh h_{t-1}   one GEMM
//                       h_t = tanh(a_t)                       one pass
//   backward, per step  da_t = (dL/dh_t) (1 - h_t^2)          one pass
//     from the last     dh_{t-1} = da_t W_hh                  one GEMM
//   then, all steps     dW_hh = sum_t da_t^T h_{t-1}          one GEMM
//                       db_hh = sum_t da_t,  d(W_xh x_t + b_ih) = da_t
//
// where dL/dh_t is the gradient of the step's output plus that of step t+1.
// Buffers are (B,T,H) row-major: step t of sequence b is row b*T + t.

// Step t for the B sequences: a (row stride stride) holds a_t and gets h_t =
// tanh(a_t); the state h (B,H) becomes h_t where the step is inside the
// sequence (t < lengths[b]; no lengths: always) and stays in its padding,
// where the output (row stride out_stride) is 0.
AG_SIMD_CLONES void rnn_cell_forward(int64_t batch, int64_t H, int64_t t, const int64_t* lengths,
                                     real* a, int64_t stride, real* h, real* out,
                                     int64_t out_stride) noexcept {
  for (int64_t b = 0; b < batch; ++b) {
    real* ab = a + b * stride;
    real* ob = out + b * out_stride;
    // [F0.5] h_t = tanh(W_hh h_{t-1} + W_xh x_t + b)     a_t holds the sum, row b (H)
    for (int64_t j = 0; j < H; ++j) ab[j] = fast::tanh(ab[j]);
    const bool active = !lengths || t < lengths[b];
    for (int64_t j = 0; j < H; ++j) ob[j] = active ? ab[j] : 0;
    if (active) std::copy(ab, ab + H, h + b * H);
  }
}

// The derivative of rnn_cell_forward for step t: dh (B,H) holds the gradient
// of the state after the step and dout that of its output. Writes da_t (row
// stride stride) and zeros in dh (the GEMM dh_{t-1} = da_t W_hh adds to it);
// in the padding, da_t = 0 and dh passes through.
AG_SIMD_CLONES void rnn_cell_backward(int64_t batch, int64_t H, int64_t t, const int64_t* lengths,
                                      const real* h_t, int64_t stride, const real* dout,
                                      int64_t out_stride, real* da, real* dh) noexcept {
  for (int64_t b = 0; b < batch; ++b) {
    real* d = da + b * stride;
    if (lengths && t >= lengths[b]) {
      for (int64_t j = 0; j < H; ++j) d[j] = 0;
      continue;
    }
    const real* hb = h_t + b * stride;
    const real* go = dout + b * out_stride;
    real* dhb = dh + b * H;
    // d tanh(a)/da = 1 - tanh(a)^2
    for (int64_t j = 0; j < H; ++j) d[j] = (dhb[j] + go[j]) * (1 - hb[j] * hb[j]);
    for (int64_t j = 0; j < H; ++j) dhb[j] = 0;
  }
}

// T steps of the cell in one direction as one op. input_part (B,T,H) = W_xh
// x_t + b_ih of every step, or (B,H) for one step (a cell); h0 (B,H),
// undefined = zeros; lengths as in RNN::forward (empty: all T); reverse: the
// steps from the last to the first. Returns (B,T+1,H): the outputs h_t of
// the T steps (0 in the padding), then h_n, the state after the last step;
// for one step h_1 itself, (B,H). The caller has checked the shapes.
Tensor rnn_steps_fused(const Tensor& input_part, const Tensor& weight_hh, const Tensor& bias_hh,
                       const Tensor& h0, const std::vector<int64_t>& lengths, bool reverse,
                       const char* node_name) {
  const bool one_step = input_part.dim() == 2;
  const int64_t B = input_part.size(0), T = one_step ? 1 : input_part.size(1);
  const int64_t H = weight_hh.size(1), rows = one_step ? 1 : T + 1;  // rows of out per sequence
  const int64_t* len = lengths.empty() ? nullptr : lengths.data();
  // a_t = (W_xh x_t + b_ih) + b_hh for every step; the loop adds W_hh h_{t-1}
  Tensor hidden = Tensor::empty({B, T, H});  // a_t, then h_t = tanh(a_t)
  {
    const real* x = input_part.data();
    const real* bias = bias_hh.data();
    real* a = hidden.data();
    for (int64_t row = 0; row < B * T; ++row)
      for (int64_t j = 0; j < H; ++j) a[row * H + j] = x[row * H + j] + bias[j];
  }
  Tensor h_prev = Tensor::empty({B, T, H});  // h_{t-1} of every step: the GEMM's input, and dW_hh's
  Tensor out = Tensor::empty(one_step ? Shape{B, H} : Shape{B, T + 1, H});
  Tensor h = h0.defined() ? h0.detach() : zeros({B, H});
  for (int64_t step = 0; step < T; ++step) {
    const int64_t t = reverse ? T - 1 - step : step;
    real* h_in = h_prev.data() + t * H;  // row b at b*T*H
    for (int64_t b = 0; b < B; ++b)
      std::copy(h.data() + b * H, h.data() + (b + 1) * H, h_in + b * T * H);
    // a_t += h_{t-1} W_hh^T      (B,H) x (H,H) (none from h0 = 0)
    if (step > 0 || h0.defined())
      gemm_strided(false, true, B, H, H, 1, h_in, T * H, weight_hh.data(), H, 1,
                   hidden.data() + t * H, T * H);
    rnn_cell_forward(B, H, t, len, hidden.data() + t * H, T * H, h.data(), out.data() + t * H,
                     rows * H);
  }
  if (!one_step)  // h_n: row T
    for (int64_t b = 0; b < B; ++b)
      std::copy(h.data() + b * H, h.data() + (b + 1) * H, out.data() + (b * rows + T) * H);

  auto backward = [hidden, h_prev, weight_hh, lengths, input_shape = input_part.shape(), B, T, H,
                   rows, one_step, reverse, has_h0 = h0.defined(),
                   to_h0 = h0.defined() && h0.requires_grad(), to_w = weight_hh.requires_grad(),
                   to_b = bias_hh.requires_grad()](const Tensor& g, const Tensor&) {
    const int64_t* len = lengths.empty() ? nullptr : lengths.data();
    const real* dout = g.data();
    // the gradient of the state after the last step: h_n's (none for one step:
    // there h_n is the output, whose gradient dout already is)
    Tensor dh = zeros({B, H});
    if (!one_step)
      for (int64_t b = 0; b < B; ++b) std::copy_n(dout + (b * rows + T) * H, H, dh.data() + b * H);
    Tensor da = Tensor::empty(input_shape);  // (B,T,H): the gradient of input_part too
    for (int64_t step = T - 1; step >= 0; --step) {
      const int64_t t = reverse ? T - 1 - step : step;
      rnn_cell_backward(B, H, t, len, hidden.data() + t * H, T * H, dout + t * H, rows * H,
                        da.data() + t * H, dh.data());
      // dh_{t-1} += da_t W_hh      (B,H) x (H,H)
      if (step > 0 || to_h0)
        gemm_strided(false, false, B, H, H, 1, da.data() + t * H, T * H, weight_hh.data(), H, 1,
                     dh.data(), H);
    }
    Grads grads{da, Tensor(), Tensor()};
    if (to_w) {
      // dW_hh = sum over every step and sequence of da_t^T h_{t-1}: one GEMM    (H, B*T) x (B*T, H)
      grads[1] = Tensor::empty({H, H});
      gemm(true, false, H, H, B * T, 1, da.data(), h_prev.data(), 0, grads[1].data());
    }
    if (to_b) grads[2] = kernel::sum_to(da, {H});  // db_hh = sum of da_t
    if (has_h0) grads.push_back(dh);
    return grads;
  };
  std::vector<Tensor> inputs{input_part, weight_hh, bias_hh};
  if (h0.defined()) inputs.push_back(h0);
  record(node_name, out, inputs, std::move(backward));
  return out;
}

// x (B, input_size), and h undefined (zeros) or (B, hidden_size).
void check_rnn_cell(const Tensor& x, const Tensor& h, int64_t input_size, int64_t hidden_size) {
  check_defined(x, "RNNCell");
  AG_CHECK(x.dim() == 2 && x.size(1) == input_size,
           "RNNCell: input {} must be (batch, input_size = {})", describe(x), input_size);
  check_state(h, x.size(0), hidden_size, "RNNCell", "state");
}

}  // namespace

RNNCell::RNNCell(int64_t input_size, int64_t hidden_size)
    : Module("RNNCell"), input_size(input_size), hidden_size(hidden_size) {
  std::tie(weight_ih, weight_hh, bias_ih, bias_hh) = register_recurrent_parameters(
      [this](const std::string& name, Tensor t) { return register_parameter(name, t); }, "",
      /*gates=*/1, input_size, hidden_size, "RNNCell");
}

Tensor RNNCell::forward(const Tensor& x, const Tensor& h) {
  check_rnn_cell(x, h, input_size, hidden_size);
  if (!reference_mode())  // fast mode: W_xh x + b_ih in one GEMM, the rest as one op
    return rnn_steps_fused(linear(x, weight_ih, bias_ih), weight_hh, bias_hh, h, {}, false,
                           "RNNCellBackward");
  const Tensor h_prev = h.defined() ? h : zeros({x.size(0), hidden_size});
  // [F0.5] h_t = tanh(W_hh h_{t-1} + W_xh x_t + b)     x (B,D), h (B,H) -> (B,H)
  return tanh(linear(x, weight_ih, bias_ih) + linear(h_prev, weight_hh, bias_hh));
}

std::string RNNCell::extra_repr() const {
  return fmt::format("input_size={}, hidden_size={}", input_size, hidden_size);
}

RNNBase::RNNBase(const char* type, int64_t gates, int64_t input_size, int64_t hidden_size,
                 int64_t num_layers, real dropout, bool bidirectional)
    : Module(type),
      input_size(input_size),
      hidden_size(hidden_size),
      num_layers(num_layers),
      dropout(dropout),
      bidirectional(bidirectional),
      has_cell_state_(gates == 4) {
  AG_CHECK(num_layers >= 1, "{}: num_layers must be >= 1, got {}", type, num_layers);
  // p = 1 would zero every layer's input above the first (PyTorch allows it; it trains nothing)
  AG_CHECK(dropout >= 0 && dropout < 1, "{}: dropout must be in [0, 1), got {}", type, dropout);
  auto registrar = [this](const std::string& name, Tensor t) {
    return register_parameter(name, t);
  };
  for (int64_t layer = 0; layer < num_layers; ++layer)
    for (int64_t direction = 0; direction < num_directions(); ++direction) {
      // layer 0 reads x (D features); every layer above reads the one below: dirs*H
      const int64_t layer_input = layer == 0 ? input_size : num_directions() * hidden_size;
      const std::string suffix = fmt::format("_l{}{}", layer, direction == 1 ? "_reverse" : "");
      RecurrentWeights w;
      std::tie(w.weight_ih, w.weight_hh, w.bias_ih, w.bias_hh) =
          register_recurrent_parameters(registrar, suffix, gates, layer_input, hidden_size, type);
      weights.push_back(w);
    }
  weight_ih_l0 = weights[0].weight_ih;
  weight_hh_l0 = weights[0].weight_hh;
  bias_ih_l0 = weights[0].bias_ih;
  bias_hh_l0 = weights[0].bias_hh;
}

void RNNBase::check_input(const Tensor& x, const std::vector<int64_t>& lengths) const {
  const char* op = type_name().c_str();
  check_defined(x, op);
  AG_CHECK(x.dim() == 3 && x.size(2) == input_size && x.size(1) >= 1,
           "{}: input {} must be (batch, time >= 1, input_size = {})", op, describe(x), input_size);
  check_lengths(lengths, x, op);
}

void RNNBase::check_initial(const Tensor& state, int64_t batch, const char* what) const {
  const int64_t rows = num_layers * num_directions();
  AG_CHECK(!state.defined() || state.shape() == Shape({rows, batch, hidden_size}),
           "{}: initial state {} {} must be (num_layers * num_directions = {}, batch = {}, "
           "hidden_size = {})",
           type_name(), what, describe(state), rows, batch, hidden_size);
}

SequenceOutput RNNBase::steps(const Tensor& input_part, const std::vector<int64_t>& lengths,
                              const RecurrentState& start, const RecurrentWeights& w,
                              bool reverse) const {
  const int64_t B = input_part.size(0), T = input_part.size(1);
  RecurrentState state{start.h.defined() ? start.h : zeros({B, hidden_size}),
                       has_cell_state_ && !start.c.defined() ? zeros({B, hidden_size}) : start.c};
  std::vector<Tensor> outputs(static_cast<size_t>(T));
  for (int64_t i = 0; i < T; ++i) {
    // the reverse direction reads the steps from the last to the first
    const int64_t t = reverse ? T - 1 - i : i;
    const RecurrentState next = step(squeeze(narrow(input_part, 1, t, 1), 1), state, w);
    if (lengths.empty()) {
      state = next;
      outputs[t] = next.h;
    } else {
      // A sequence's padding leaves its state as it is and outputs zeros:
      // forward, the state stays at its last step; reverse, it stays at
      // the initial one until the sequence's last real step, where it starts.
      const Tensor active = active_steps(lengths, B, t);
      state.h = where(active, next.h, state.h);
      if (has_cell_state_) state.c = where(active, next.c, state.c);
      outputs[t] = next.h * active;
    }
  }
  return {stack(outputs, 1), state.h, state.c};
}

SequenceOutput RNNBase::steps_fused(const Tensor& input_part, const std::vector<int64_t>& lengths,
                                    const RecurrentState& start, const RecurrentWeights& w,
                                    bool reverse) const {
  return steps(input_part, lengths, start, w, reverse);
}

SequenceOutput RNNBase::run(const Tensor& x, const std::vector<int64_t>& lengths,
                            const RecurrentState& initial) {
  const int64_t dirs = num_directions();
  // Row `index` of an initial state (L*dirs,B,H): where one layer and direction
  // starts (undefined: zeros, made by the steps that need them)
  auto start = [&](const Tensor& all, int64_t index) {
    return all.defined() ? squeeze(narrow(all, 0, index, 1), 0) : Tensor();
  };
  std::vector<Tensor> h_n, c_n;  // (B,H) each, in the order of their rows
  Tensor layer_input = x;        // (B,T,D) for layer 0, (B,T,dirs*H) above it
  for (int64_t layer = 0; layer < num_layers; ++layer) {
    std::vector<Tensor> direction_outputs;  // (B,T,H) each
    for (int64_t direction = 0; direction < dirs; ++direction) {
      const int64_t index = layer * dirs + direction;
      const RecurrentWeights& w = weights[index];
      // W_ih x_t + b_ih for every step at once: one GEMM    (B,T,in) -> (B,T,gates*H)
      const Tensor input_part = linear(layer_input, w.weight_ih, w.bias_ih);
      const RecurrentState state{start(initial.h, index),
                                 has_cell_state_ ? start(initial.c, index) : Tensor()};
      // The time steps one by one (step), or in fast mode as one fused op
      const SequenceOutput out = reference_mode()
                                     ? steps(input_part, lengths, state, w, direction == 1)
                                     : steps_fused(input_part, lengths, state, w, direction == 1);
      direction_outputs.push_back(out.output);
      h_n.push_back(out.h_n);
      if (has_cell_state_) c_n.push_back(out.c_n);
    }
    // [->h_t; <-h_t]: both directions side by side    (B,T,H) ++ (B,T,H) -> (B,T,2H)
    layer_input = dirs == 1 ? direction_outputs[0] : cat(direction_outputs, 2);
    // dropout between layers, on what the next layer reads (PyTorch: not after the last)
    if (layer + 1 < num_layers) layer_input = nn::dropout(layer_input, dropout, is_training());
  }
  return {layer_input, stack(h_n, 0), has_cell_state_ ? stack(c_n, 0) : Tensor()};
}

std::string RNNBase::extra_repr() const {
  // PyTorch's repr: the settings that differ from the defaults
  std::string s = fmt::format("input_size={}, hidden_size={}", input_size, hidden_size);
  if (num_layers != 1) s += fmt::format(", num_layers={}", num_layers);
  s += ", batch_first=true";
  if (dropout != 0) s += fmt::format(", dropout={}", dropout);
  if (bidirectional) s += ", bidirectional=true";
  return s;
}

RNN::RNN(int64_t input_size, int64_t hidden_size, int64_t num_layers, real dropout,
         bool bidirectional)
    : RNNBase("RNN", /*gates=*/1, input_size, hidden_size, num_layers, dropout, bidirectional) {}

SequenceOutput RNN::forward(const Tensor& x, const std::vector<int64_t>& lengths,
                            const Tensor& h0) {
  check_input(x, lengths);
  check_initial(h0, x.size(0), "h0");
  return run(x, lengths, {h0, Tensor()});
}

RecurrentState RNN::step(const Tensor& input_part, const RecurrentState& previous,
                         const RecurrentWeights& w) const {
  if (!reference_mode())  // fast mode: the line below as one op
    return {rnn_steps_fused(input_part, w.weight_hh, w.bias_hh, previous.h, {}, false,
                            "RNNStepBackward"),
            Tensor()};
  // [F0.5] h_t = tanh(W_hh h_{t-1} + W_xh x_t + b)   input_part = W_xh x_t + b_ih (B,H)
  return {tanh(input_part + linear(previous.h, w.weight_hh, w.bias_hh)), Tensor()};
}

SequenceOutput RNN::steps_fused(const Tensor& input_part, const std::vector<int64_t>& lengths,
                                const RecurrentState& start, const RecurrentWeights& w,
                                bool reverse) const {
  // steps() in one op: (B,T+1,H), the T outputs, then h_n
  const int64_t T = input_part.size(1);
  const Tensor all = rnn_steps_fused(input_part, w.weight_hh, w.bias_hh, start.h, lengths, reverse,
                                     "RNNLayerBackward");
  return {narrow(all, 1, 0, T), squeeze(narrow(all, 1, T, 1), 1), Tensor()};
}

}  // namespace ag::nn
