// Point attention, seed 000 (sections 3.1 and 4): one score per element of a
// sequence, a softmax over the sequence, and the weighted sum of the elements
// as the context. The layer is the seed's PyTorch `Attention` class line by
// line, with the same submodule name ("linear"), so its weights load from that
// code's state_dict by name.
//
//   x (B,T,H) --[F0.1] Linear(H,1)--> e (B,T,1) --[F0.2] softmax over T--> a (B,T,1)
//             --[F0.4] sum_i a_i x_i--> context (B,H)
#pragma once

#include "layers/attention/attention_output.hpp"
#include "layers/basic/linear.hpp"
#include "layers/framework/module.hpp"

namespace ag::nn {

class PointAttention : public Module {
 public:
  explicit PointAttention(int64_t hidden_size);
  // x: (B,T,H) -> context (B,H), weights (B,T,1), exactly the seed's `return context, a`.
  AttentionOutput forward(const Tensor& x);

  int64_t hidden_size;
  std::shared_ptr<Linear> linear;  // the score W_e x + b_e: weight (1,H), bias (1)
};

// [F0.3] h_t = x_t + sum_i a_i h_i: the residual form, each element plus the
// context (in point attention h_i = x_i).
//   x: (B,T,H), context: (B,H) -> (B,T,H)
Tensor add_context(const Tensor& x, const Tensor& context);

}  // namespace ag::nn
