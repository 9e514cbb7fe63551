// Exercise 03: point attention's forward [F0.1]-[F0.4] (chapter 03,
// docs/tutorials/03-point-attention.md). Write it in 03_point_attention.cpp;
// `make exercise-03` compares each step with nn::PointAttention::forward.
#pragma once

#include "layers/nn.hpp"
#include "tutorials/exercises/todo.hpp"

namespace ag::exercise {

// Each step of your forward, for the checker to compare one by one.
struct PointAttentionSteps {
  Tensor e;        // [F0.1] the scores         (B,T,1)
  Tensor a;        // [F0.2] the weights        (B,T,1)
  Tensor context;  // [F0.4] the weighted sum   (B,H)
};

// x (B,T,H): B sequences of T elements of H features; w_e (1,H) and b_e (1):
// the score's Linear(H,1) weight and bias.
void point_attention_forward(const Tensor& x, const Tensor& w_e, const Tensor& b_e,
                             PointAttentionSteps& steps);

}  // namespace ag::exercise
