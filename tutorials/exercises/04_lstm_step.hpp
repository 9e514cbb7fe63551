// Exercise 04 (second): one LSTM step (chapter 04's encoder and decoder,
// docs/tutorials/04-seq2seq-attention.md). Write it in 04_lstm_step.cpp;
// `make exercise-04` compares each step with nn::LSTMCell::forward.
#pragma once

#include "layers/nn.hpp"
#include "tutorials/exercises/todo.hpp"

namespace ag::exercise {

// Each step of your LSTM step, for the checker to compare one by one.
struct LSTMStepSteps {
  Tensor gates;       // W_ih x_t + b_ih + W_hh h_{t-1} + b_hh    (B,4H): [i; f; g; o]
  Tensor i, f, g, o;  // the four gates, each (B,H)
  Tensor c;           // the new cell state c_t                    (B,H)
  Tensor h;           // the new hidden state h_t                  (B,H)
};

// x (B,D); the previous state h_prev, c_prev (B,H); the weights as
// nn::LSTMCell holds them (PyTorch's layout): w_ih (4H,D), w_hh (4H,H),
// b_ih (4H), b_hh (4H), the four gates stacked in the order i, f, g, o.
void lstm_step(const Tensor& x, const Tensor& h_prev, const Tensor& c_prev, const Tensor& w_ih,
               const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh, LSTMStepSteps& steps);

}  // namespace ag::exercise
