// LSTM: the gates of one step, the cell, and the step of one layer in one
// direction (the loop over layers, directions and time is RNNBase::run, in
// rnn.cpp), each as the formulas write it, and their fast twin: the steps of
// the cell as one fused op (lstm_steps_fused). No formula ID: the seeds use
// an LSTM but give no equations for it (see lstm.hpp).
#include "layers/recurrent/lstm.hpp"

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
#include "layers/basic/affine.hpp"
#include "layers/basic/linear.hpp"

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

namespace {

// --- fast mode: the steps of the cell as one op ------------------------------------
//
// The plain code (lstm_gates and the steps below) records about twenty ops per
// step: two Linear, an add, four narrows, four activations, the products and
// sums of the cell, each a pass over memory with its own temporary, and as
// many backward nodes. lstm_steps_fused runs T steps of one layer in one
// direction (T = 1 for LSTM::step) and records one node (lstm_cell_fused,
// LSTMCell's, one step with its input projection):
//
//   forward, per step   a_t = (W_ih x_t + b_ih) + b_hh + W_hh h_{t-1}   one GEMM, all four gates
//                       i, f, g, o, c_t, h_t                  one pass (lstm_cell_forward)
//   backward, per step  da_t, dc_{t-1} from dh_t, dc_t        one pass (lstm_cell_backward)
//     from the last     dh_{t-1} = da_t W_hh                  one GEMM
//   then, all steps     dW_hh = sum_t da_t^T h_{t-1}          one GEMM
//                       db_hh = sum_t da_t,  d(W_ih x_t + b_ih) = da_t
//
// where, with the gates as the forward computes them (i, f, o = sigmoid, g = tanh),
//   dh_t  = dL/dh_t (from the step's output and from step t+1)
//   dc_t  = (dL/dc_t from step t+1) + dh_t o (1 - tanh^2 c_t)
//   da_i  = dc_t g i (1 - i)          da_f = dc_t c_{t-1} f (1 - f)
//   da_g  = dc_t i (1 - g^2)          da_o = dh_t tanh(c_t) o (1 - o)
//   dc_{t-1} = dc_t f
// Buffers are (B,T,...) row-major: step t of sequence b is row b*T + t, so one
// step's rows are `stride` elements apart and the GEMMs read them in place.

// Step t of the cell for the B sequences. gates (row stride gates_stride) holds
// a_t = W_ih x_t + b_ih + b_hh + W_hh h_{t-1} and gets i, f, g, o; the state h,
// c (B,H) becomes h_t, c_t where the step is inside the sequence (t <
// lengths[b]; no lengths: always) and stays in its padding, where the output
// is 0. c_prev and tanh_c (row stride saved_stride) keep c_{t-1} and tanh(c_t).
AG_SIMD_CLONES void lstm_cell_forward(int64_t batch, int64_t H, int64_t t, const int64_t* lengths,
                                      real* gates, int64_t gates_stride, real* h, real* c,
                                      real* c_prev, real* tanh_c, int64_t saved_stride, real* out,
                                      int64_t out_stride) noexcept {
  for (int64_t b = 0; b < batch; ++b) {
    real* a = gates + b * gates_stride;
    real* cp = c_prev + b * saved_stride;
    real* tc = tanh_c + b * saved_stride;
    real* hb = h + b * H;
    real* cb = c + b * H;
    real* ob = out + b * out_stride;
    for (int64_t j = 0; j < H; ++j) cp[j] = cb[j];
    // The buffers never overlap: ivdep spares GCC the run-time overlap checks,
    // more pairs of them than it is willing to add (the loop would stay scalar).
#pragma GCC ivdep
    for (int64_t j = 0; j < H; ++j) {
      // i = sigmoid(a_i), f = sigmoid(a_f), g = tanh(a_g), o = sigmoid(a_o)
      const real i = fast::sigmoid(a[j]), f = fast::sigmoid(a[H + j]);
      const real g = fast::tanh(a[2 * H + j]), o = fast::sigmoid(a[3 * H + j]);
      a[j] = i;
      a[H + j] = f;
      a[2 * H + j] = g;
      a[3 * H + j] = o;
      // c_t = f * c_{t-1} + i * g,  h_t = o * tanh(c_t)
      const real c_t = f * cp[j] + i * g;
      tc[j] = fast::tanh(c_t);
      cb[j] = c_t;
      ob[j] = o * tc[j];
    }
    if (!lengths || t < lengths[b]) {
      for (int64_t j = 0; j < H; ++j) hb[j] = ob[j];
    } else {  // padding: the state stays as it was, the output is 0
      for (int64_t j = 0; j < H; ++j) cb[j] = cp[j];
      for (int64_t j = 0; j < H; ++j) ob[j] = 0;
    }
  }
}

// The derivative of lstm_cell_forward for step t. dh and dc (B,H) hold the
// gradient of the state after the step, and dout (row stride out_stride) that
// of the step's output. Writes da_t (row stride gates_stride), leaves dc_{t-1}
// in dc and zeros in dh (the GEMM dh_{t-1} = da_t W_hh adds to it). In the
// padding the step changed nothing: da_t = 0, and dh, dc pass through.
AG_SIMD_CLONES void lstm_cell_backward(int64_t batch, int64_t H, int64_t t, const int64_t* lengths,
                                       const real* gates, int64_t gates_stride, const real* c_prev,
                                       const real* tanh_c, int64_t saved_stride, const real* dout,
                                       int64_t out_stride, real* da, real* dh, real* dc) noexcept {
  for (int64_t b = 0; b < batch; ++b) {
    real* d = da + b * gates_stride;
    if (lengths && t >= lengths[b]) {
      for (int64_t j = 0; j < 4 * H; ++j) d[j] = 0;
      continue;
    }
    const real* a = gates + b * gates_stride;
    const real* cp = c_prev + b * saved_stride;
    const real* tc = tanh_c + b * saved_stride;
    const real* go = dout + b * out_stride;
    real* dhb = dh + b * H;
    real* dcb = dc + b * H;
#pragma GCC ivdep  // no overlap, as in lstm_cell_forward
    for (int64_t j = 0; j < H; ++j) {
      const real i = a[j], f = a[H + j], g = a[2 * H + j], o = a[3 * H + j];
      const real dh_t = dhb[j] + go[j];
      const real dc_t = dcb[j] + dh_t * o * (1 - tc[j] * tc[j]);
      d[j] = dc_t * g * i * (1 - i);
      d[H + j] = dc_t * cp[j] * f * (1 - f);
      d[2 * H + j] = dc_t * i * (1 - g * g);
      d[3 * H + j] = dh_t * tc[j] * o * (1 - o);
      dcb[j] = dc_t * f;
      dhb[j] = 0;
    }
  }
}

// The state (B,H) a direction starts from: h0 or c0, or zeros when undefined.
Tensor start_state(const Tensor& given, int64_t batch, int64_t H) {
  return given.defined() ? given.detach() : zeros({batch, H});
}

// T steps of the cell in one direction as one op. input_part (B,T,4H) = W_ih
// x_t + b_ih of every step, or (B,4H) for one step (a cell); h0, c0 (B,H),
// undefined = zeros; lengths as in LSTM::forward (empty: all T); reverse: the
// steps from the last to the first. Returns (B,T+2,H): the outputs h_t of the
// T steps (0 in the padding), then h_n and c_n, the state after the last
// step; (B,3H), the same rows side by side, for one step. The caller has
// checked the shapes.
Tensor lstm_steps_fused(const Tensor& input_part, const Tensor& weight_hh, const Tensor& bias_hh,
                        const Tensor& h0, const Tensor& c0, const std::vector<int64_t>& lengths,
                        bool reverse, const char* node_name) {
  const bool one_step = input_part.dim() == 2;
  const int64_t B = input_part.size(0), T = one_step ? 1 : input_part.size(1);
  const int64_t H = weight_hh.size(1), G = 4 * H;
  const int64_t* len = lengths.empty() ? nullptr : lengths.data();
  // a_t = (W_ih x_t + b_ih) + b_hh for every step; the loop adds W_hh h_{t-1}
  Tensor gates = Tensor::empty({B, T, G});
  add_bias_to_rows(input_part.data(), G, bias_hh.data(), gates.data(), B * T, G);
  Tensor h_prev = Tensor::empty({B, T, H});  // h_{t-1} of every step: the GEMM's input, and dW_hh's
  Tensor c_prev = Tensor::empty({B, T, H});
  Tensor tanh_c = Tensor::empty({B, T, H});
  Tensor out = Tensor::empty(one_step ? Shape{B, 3 * H} : Shape{B, T + 2, H});
  Tensor h = start_state(h0, B, H), c = start_state(c0, B, H);
  // Where the CPU's small kernels run A B^T slowly and copy A first
  // (core/blas.hpp, small_nt_runs_as_tt), W_hh^T is copied once for all the
  // steps and each step is an A B: (32,256,64) 8.6 -> 6.3 us a step.
  Tensor weight_hh_t;
  if (T > 1 && small_nt_runs_as_tt(B, G, H)) {
    weight_hh_t = Tensor::empty({H, G});
    transpose_matrix(weight_hh.data(), G, H, H, weight_hh_t.data());
  }
  for (int64_t step = 0; step < T; ++step) {
    const int64_t t = reverse ? T - 1 - step : step;
    real* h_in = h_prev.data() + t * H;  // row b at b*T*H
    for (int64_t b = 0; b < B; ++b)
      std::copy(h.data() + b * H, h.data() + (b + 1) * H, h_in + b * T * H);
    // a_t += h_{t-1} W_hh^T      (B,H) x (H,4H): the four gates in one GEMM (none from h0 = 0)
    if ((step > 0 || h0.defined()) && weight_hh_t.defined())
      gemm_strided(false, false, B, G, H, 1, h_in, T * H, weight_hh_t.data(), G, 1,
                   gates.data() + t * G, T * G);
    else if (step > 0 || h0.defined())
      gemm_strided(false, true, B, G, H, 1, h_in, T * H, weight_hh.data(), H, 1,
                   gates.data() + t * G, T * G);
    lstm_cell_forward(B, H, t, len, gates.data() + t * G, T * G, h.data(), c.data(),
                      c_prev.data() + t * H, tanh_c.data() + t * H, T * H, out.data() + t * H,
                      (T + 2) * H);
  }
  for (int64_t b = 0; b < B; ++b) {  // h_n and c_n: rows T and T+1
    std::copy(h.data() + b * H, h.data() + (b + 1) * H, out.data() + (b * (T + 2) + T) * H);
    std::copy(c.data() + b * H, c.data() + (b + 1) * H, out.data() + (b * (T + 2) + T + 1) * H);
  }

  auto backward = [gates, h_prev, c_prev, tanh_c, weight_hh, lengths,
                   input_shape = input_part.shape(), B, T, H, G, reverse, has_h0 = h0.defined(),
                   has_c0 = c0.defined(), to_h0 = h0.defined() && h0.requires_grad(),
                   to_w = weight_hh.requires_grad(),
                   to_b = bias_hh.requires_grad()](const Tensor& g, const Tensor&) {
    const int64_t* len = lengths.empty() ? nullptr : lengths.data();
    const real* dout = g.data();
    // the gradient of the state after the last step: that of h_n and c_n
    Tensor dh = Tensor::empty({B, H}), dc = Tensor::empty({B, H});
    for (int64_t b = 0; b < B; ++b) {
      std::copy_n(dout + (b * (T + 2) + T) * H, H, dh.data() + b * H);
      std::copy_n(dout + (b * (T + 2) + T + 1) * H, H, dc.data() + b * H);
    }
    Tensor da = Tensor::empty(input_shape);  // (B,T,4H): the gradient of input_part too
    for (int64_t step = T - 1; step >= 0; --step) {
      const int64_t t = reverse ? T - 1 - step : step;
      lstm_cell_backward(B, H, t, len, gates.data() + t * G, T * G, c_prev.data() + t * H,
                         tanh_c.data() + t * H, T * H, dout + t * H, (T + 2) * H, da.data() + t * G,
                         dh.data(), dc.data());
      // dh_{t-1} += da_t W_hh      (B,4H) x (4H,H)
      if (step > 0 || to_h0)
        gemm_strided(false, false, B, H, G, 1, da.data() + t * G, T * G, weight_hh.data(), H, 1,
                     dh.data(), H);
    }
    Grads grads{da, Tensor(), Tensor()};
    if (to_w) {
      // dW_hh = sum over every step and sequence of da_t^T h_{t-1}     (4H, B*T) x (B*T, H)
      grads[1] = Tensor::empty({G, H});
      gemm(true, false, G, H, B * T, 1, da.data(), h_prev.data(), 0, grads[1].data());
    }
    if (to_b) grads[2] = kernel::sum_to(da, {G});  // db_hh = sum of da_t
    if (has_h0) grads.push_back(dh);
    if (has_c0) grads.push_back(dc);
    return grads;
  };
  std::vector<Tensor> inputs{input_part, weight_hh, bias_hh};
  if (h0.defined()) inputs.push_back(h0);
  if (c0.defined()) inputs.push_back(c0);
  record(node_name, out, inputs, std::move(backward));
  return out;
}

// LSTMCell::forward in one op: the input projection too, W_ih x + b_ih, which
// for a layer is one GEMM over all the steps before them (in RNNBase::run),
// but for a cell is one more GEMM per step. The step records one node, not a
// Linear and a step. x (B,D); h0, c0 (B,H), undefined = zeros. Returns (B,2H): h'
// and c' side by side. The caller has checked the shapes.
Tensor lstm_cell_fused(const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& weight_ih,
                       const Tensor& weight_hh, const Tensor& bias_ih, const Tensor& bias_hh) {
  const int64_t B = x.size(0), D = x.size(1), H = weight_hh.size(1), G = 4 * H;
  // a = b_ih + b_hh + x W_ih^T + h W_hh^T      (B,4H)
  Tensor gates = Tensor::empty({B, G});
  add_bias_to_rows(bias_ih.data(), 0, bias_hh.data(), gates.data(), B, G);
  gemm(false, true, B, G, D, 1, x.data(), weight_ih.data(), 1, gates.data());
  if (h0.defined()) gemm(false, true, B, G, H, 1, h0.data(), weight_hh.data(), 1, gates.data());
  Tensor h = Tensor::empty({B, H}), c = start_state(c0, B, H);
  Tensor c_prev = Tensor::empty({B, H}), tanh_c = Tensor::empty({B, H});
  Tensor out = Tensor::empty({B, 2 * H});
  lstm_cell_forward(B, H, 0, nullptr, gates.data(), G, h.data(), c.data(), c_prev.data(),
                    tanh_c.data(), H, out.data(), 2 * H);
  for (int64_t b = 0; b < B; ++b)  // c' beside h'
    std::copy(c.data() + b * H, c.data() + (b + 1) * H, out.data() + b * 2 * H + H);

  auto backward = [gates, c_prev, tanh_c, x, h0, weight_ih, weight_hh, B, D, H, G,
                   has_c0 = c0.defined()](const Tensor& g, const Tensor&, const GradSums& sums) {
    // dL/dh' is the output's (there is no later step here), dL/dc' the c part of g
    Tensor dh = zeros({B, H}), dc = Tensor::empty({B, H});
    for (int64_t b = 0; b < B; ++b) std::copy_n(g.data() + b * 2 * H + H, H, dc.data() + b * H);
    Tensor da = Tensor::empty({B, G});
    lstm_cell_backward(B, H, 0, nullptr, gates.data(), G, c_prev.data(), tanh_c.data(), H, g.data(),
                       2 * H, da.data(), dh.data(), dc.data());
    Grads grads(5);
    // dL/dx = da W_ih     (B,4H) x (4H,D)
    if (x.requires_grad()) {
      grads[0] = Tensor::empty({B, D});
      gemm(false, false, B, D, G, 1, da.data(), weight_ih.data(), 0, grads[0].data());
    }
    // dL/dW_ih = da^T x   (4H,B) x (B,D);   dL/dW_hh = da^T h (0 from h = 0)
    // Each added into the sum the weight has gathered so far when there is one
    // (GradSums): a decoder's cell runs at every step.
    bool adding = false;
    if (weight_ih.requires_grad()) {
      grads[1] = sums.existing_or_new(1, {G, D}, adding);
      gemm(true, false, G, D, B, 1, da.data(), x.data(), adding ? 1 : 0, grads[1].data());
    }
    if (weight_hh.requires_grad()) {
      if (h0.defined()) {
        grads[2] = sums.existing_or_new(2, {G, H}, adding);
        gemm(true, false, G, H, B, 1, da.data(), h0.data(), adding ? 1 : 0, grads[2].data());
      } else {
        grads[2] = zeros({G, H});
      }
    }
    // dL/db_ih = dL/db_hh = the sum of da over the batch
    grads[3] = kernel::sum_to(da, {G});
    grads[4] = grads[3];
    if (h0.defined()) {
      // dL/dh = da W_hh   (B,4H) x (4H,H)
      gemm(false, false, B, H, G, 1, da.data(), weight_hh.data(), 0, dh.data());
      grads.push_back(dh);
    }
    if (has_c0) grads.push_back(dc);  // dL/dc = dc' f, left in dc by lstm_cell_backward
    return grads;
  };
  std::vector<Tensor> inputs{x, weight_ih, weight_hh, bias_ih, bias_hh};
  if (h0.defined()) inputs.push_back(h0);
  if (c0.defined()) inputs.push_back(c0);
  record("LSTMCellBackward", out, inputs, std::move(backward));
  return out;
}

// x (B, input_size), and h and c each undefined (zeros) or (B, hidden_size).
void check_lstm_cell(const Tensor& x, const RecurrentState& state, int64_t input_size,
                     int64_t hidden_size) {
  check_defined(x, "LSTMCell");
  AG_CHECK(x.dim() == 2 && x.size(1) == input_size,
           "LSTMCell: input {} must be (batch, input_size = {})", describe(x), input_size);
  check_state(state.h, x.size(0), hidden_size, "LSTMCell", "h");
  check_state(state.c, x.size(0), hidden_size, "LSTMCell", "c");
}

}  // namespace

LSTMCell::LSTMCell(int64_t input_size, int64_t hidden_size)
    : Module("LSTMCell"), input_size(input_size), hidden_size(hidden_size) {
  std::tie(weight_ih, weight_hh, bias_ih, bias_hh) = register_recurrent_parameters(
      [this](const std::string& name, Tensor t) { return register_parameter(name, t); }, "",
      /*gates=*/4, input_size, hidden_size, "LSTMCell");
}

RecurrentState LSTMCell::forward(const Tensor& x, const RecurrentState& state) {
  check_lstm_cell(x, state, input_size, hidden_size);
  const int64_t B = x.size(0);
  if (!reference_mode()) {  // fast mode: everything below as one op
    const Tensor out =
        lstm_cell_fused(x, state.h, state.c, weight_ih, weight_hh, bias_ih, bias_hh);  // [h' c']
    return {narrow(out, 1, 0, hidden_size), narrow(out, 1, hidden_size, hidden_size)};
  }
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
  if (!reference_mode()) {  // fast mode: the step below and lstm_gates as one op
    const Tensor out = lstm_steps_fused(input_part, w.weight_hh, w.bias_hh, previous.h, previous.c,
                                        {}, false, "LSTMStepBackward");  // [h_t, h_n = h_t, c_t]
    return {narrow(out, 1, 0, hidden_size), narrow(out, 1, 2 * hidden_size, hidden_size)};
  }
  // [i; f; g; o] = (W_ih x_t + b_ih) + W_hh h_{t-1} + b_hh      (B,4H) + (B,H) -> (B,4H)
  const Tensor gates = input_part + linear(previous.h, w.weight_hh, w.bias_hh);
  return lstm_gates(gates, previous.c, hidden_size);
}

SequenceOutput LSTM::steps_fused(const Tensor& input_part, const std::vector<int64_t>& lengths,
                                 const RecurrentState& start, const RecurrentWeights& w,
                                 bool reverse) const {
  // steps() in one op: (B,T+2,H), the T outputs, then h_n and c_n
  const int64_t T = input_part.size(1);
  const Tensor all = lstm_steps_fused(input_part, w.weight_hh, w.bias_hh, start.h, start.c, lengths,
                                      reverse, "LSTMLayerBackward");
  return {narrow(all, 1, 0, T), squeeze(narrow(all, 1, T, 1), 1),
          squeeze(narrow(all, 1, T + 1, 1), 1)};
}

}  // namespace ag::nn
