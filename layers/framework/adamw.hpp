// AdamW, with PyTorch's update rule exactly (torch.optim.AdamW, amsgrad off):
// Adam with the weight decay taken out of the gradient (Loshchilov and
// Hutter, "Decoupled weight decay regularization", 2019).
//
// optim::Adam adds weight_decay * p to the gradient, so the decay goes through
// Adam's division by sqrt(v) and a parameter with large gradients is hardly
// decayed at all. AdamW shrinks the parameter itself, by the same fraction
// lr * weight_decay for every parameter, then takes Adam's step on the plain
// gradient. For each parameter p with gradient grad, elementwise, t its step
// count (1 on its first update), m and v starting at 0:
//
//   p = p - lr * weight_decay * p                (decoupled decay, on the old p)
//   m = b1 m + (1 - b1) grad
//   v = b2 v + (1 - b2) grad^2
//   p = p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
//
// computed in PyTorch's order (layers/framework/optim.hpp says it for Adam).
// (No formula ID: the articles give no optimizer formulas.)
#pragma once

#include <utility>

#include "layers/framework/optim.hpp"

namespace ag::optim {

class AdamW : public Optimizer {
 public:
  // PyTorch's defaults; note weight_decay 0.01 (Adam's is 0).
  explicit AdamW(std::vector<Tensor> params, real lr = real(1e-3),
                 std::pair<real, real> betas = {real(0.9), real(0.999)}, real eps = real(1e-8),
                 real weight_decay = real(1e-2));
  void step() override;

  std::pair<real, real> betas() const { return {beta1_, beta2_}; }
  real eps() const { return eps_; }
  real weight_decay() const { return weight_decay_; }

 private:
  struct State {
    int64_t step = 0;  // updates made to this parameter
    Tensor m, v;       // the moments, made on its first update
  };
  real beta1_, beta2_, eps_, weight_decay_;
  std::vector<State> state_;  // one per parameter
};

}  // namespace ag::optim
