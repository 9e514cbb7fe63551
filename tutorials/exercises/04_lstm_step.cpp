// Exercise 04 (second): one LSTM step
//
// Chapter 04's encoder and decoder (docs/tutorials/04-seq2seq-attention.md)
// are LSTMs: at each step four gates decide what the memory c keeps, what it
// takes in and what it lets out. With PyTorch's layout, one GEMM-sized sum
// gives all four gates, stacked input, forget, cell, output:
//
//   [i; f; g; o] = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh      (B,4H)
//   i = sigmoid(.)  f = sigmoid(.)  g = tanh(.)  o = sigmoid(.)
//   c_t = f * c_{t-1} + i * g
//   h_t = o * tanh(c_t)
//
// Replace each TODO() with attograd ops (nn::linear, narrow, sigmoid, tanh,
// *, +: autograd/ops.hpp, layers/basic/linear.hpp), then run
//
//   make exercise-04
//
// (it checks the additive score too). It runs your step and nn::LSTMCell's
// (layers/recurrent/lstm.cpp) on the same seeded inputs and state, compares each step
// and the gradients, and names the first tensor that differs. Stuck?
// tutorials/exercises/solutions/04_lstm_step.cpp.
#include "tutorials/exercises/04_lstm_step.hpp"

namespace ag::exercise {

void lstm_step(const Tensor& x, const Tensor& h_prev, const Tensor& c_prev, const Tensor& w_ih,
               const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh, LSTMStepSteps& steps) {
  // [i; f; g; o] = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh          (B,D), (B,H) -> (B,4H)
  steps.gates = TODO();
  // the four quarters of dim 1, each H = h_prev.size(1) wide, in the order i, f, g, o:
  // sigmoid, sigmoid, tanh, sigmoid                                          (B,H) each
  steps.i = TODO();
  steps.f = TODO();
  steps.g = TODO();
  steps.o = TODO();
  // c_t = f * c_{t-1} + i * g: forget part of the old memory, write the new candidate
  steps.c = TODO();
  // h_t = o * tanh(c_t): the part of the memory the output gate lets out
  steps.h = TODO();
}

}  // namespace ag::exercise
