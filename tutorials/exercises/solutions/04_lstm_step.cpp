// Exercise 04 (second), solved: one LSTM step, as nn::LSTMCell computes it
// (layers/recurrent/lstm.cpp). `make solution-04` checks it.
#include "tutorials/exercises/04_lstm_step.hpp"

namespace ag::exercise {

void lstm_step(const Tensor& x, const Tensor& h_prev, const Tensor& c_prev, const Tensor& w_ih,
               const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh, LSTMStepSteps& steps) {
  const int64_t H = h_prev.size(1);
  // one linear per input, (B,4H) each: all four gates at once
  steps.gates = nn::linear(x, w_ih, b_ih) + nn::linear(h_prev, w_hh, b_hh);
  // quarter k is columns k*H .. (k+1)*H - 1 of dim 1
  steps.i = sigmoid(narrow(steps.gates, 1, 0, H));
  steps.f = sigmoid(narrow(steps.gates, 1, H, H));
  steps.g = tanh(narrow(steps.gates, 1, 2 * H, H));
  steps.o = sigmoid(narrow(steps.gates, 1, 3 * H, H));
  steps.c = steps.f * c_prev + steps.i * steps.g;
  steps.h = steps.o * tanh(steps.c);
}

}  // namespace ag::exercise
