// (No formula ID: the articles name RMSprop but give no formula for it.)
// RMSprop, with PyTorch's update rule exactly (torch.optim.RMSprop): the
// optimizer seed 001 (section 5.2) compiles its Keras model with,
// `optimizer='rmsprop'` (Keras's defaults there: learning rate 0.001, rho 0.9;
// rho is PyTorch's and attograd's alpha).
//
// For each parameter p with gradient grad, elementwise, the running averages
// v (of g^2), g_avg (of g) and the momentum buffer buf starting at 0:
//
//   g     = grad + weight_decay * p
//   v     = alpha v + (1 - alpha) g^2             running mean of g^2
//   denom = sqrt(v) + eps                         or, centered:
//   g_avg = alpha g_avg + (1 - alpha) g,  denom = sqrt(v - g_avg^2) + eps
//   p     = p - lr * g / denom                    or, with momentum > 0:
//   buf   = momentum buf + g / denom,     p = p - lr * buf
//
// Dividing by the root of the mean square gives every parameter a step of
// about lr whatever the scale of its gradient (Hinton's lecture 6e). Unlike
// Adam there is no bias correction: v starts at 0, so the first steps are
// larger, about lr / sqrt(1 - alpha) (10 lr with alpha 0.99). Centered, the
// gradient's variance replaces its mean square.
#pragma once

#include "layers/framework/optim.hpp"

namespace ag::optim {

class RMSprop : public Optimizer {
 public:
  // PyTorch's defaults. alpha must be in [0, 1): with alpha = 1 the average
  // never leaves 0 and every step divides by eps.
  explicit RMSprop(std::vector<Tensor> params, real lr = real(0.01), real alpha = real(0.99),
                   real eps = real(1e-8), real weight_decay = 0, real momentum = 0,
                   bool centered = false);
  void step() override;

  real alpha() const { return alpha_; }
  real eps() const { return eps_; }
  real weight_decay() const { return weight_decay_; }
  real momentum() const { return momentum_; }
  bool centered() const { return centered_; }

 private:
  struct State {
    Tensor square_avg;  // v, made on the parameter's first step
    Tensor grad_avg;    // g_avg, centered only
    Tensor momentum_buffer;  // buf, momentum > 0 only
  };
  real alpha_, eps_, weight_decay_, momentum_;
  bool centered_;
  std::vector<State> state_;  // one per parameter
};

}  // namespace ag::optim
