// A plausible mistake in exercise 04's LSTM step: the gates read in the order
// f, i, g, o (as some texts write them) instead of PyTorch's i, f, g, o.
// tests/exercises/check_exercises.sh expects the checker to name:
// the checker must name: i
#include "tutorials/exercises/04_lstm_step.hpp"

namespace ag::exercise {

void lstm_step(const Tensor& x, const Tensor& h_prev, const Tensor& c_prev, const Tensor& w_ih,
               const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh, LSTMStepSteps& steps) {
  const int64_t H = h_prev.size(1);
  steps.gates = nn::linear(x, w_ih, b_ih) + nn::linear(h_prev, w_hh, b_hh);
  steps.f = sigmoid(narrow(steps.gates, 1, 0, H));
  steps.i = sigmoid(narrow(steps.gates, 1, H, H));
  steps.g = tanh(narrow(steps.gates, 1, 2 * H, H));
  steps.o = sigmoid(narrow(steps.gates, 1, 3 * H, H));
  steps.c = steps.f * c_prev + steps.i * steps.g;
  steps.h = steps.o * tanh(steps.c);
}

}  // namespace ag::exercise
