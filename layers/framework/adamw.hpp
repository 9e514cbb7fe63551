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
#include <vector>

#include "layers/framework/optim.hpp"

namespace ag::optim {

class AdamW : public Adam {
 public:
  // PyTorch's defaults; note weight_decay 0.01 (Adam's is 0). Adam's step,
  // moments and checks, with the decay decoupled (layers/framework/optim.cpp).
  explicit AdamW(std::vector<Tensor> params, real lr = real(1e-3),
                 std::pair<real, real> betas = {real(0.9), real(0.999)}, real eps = real(1e-8),
                 real weight_decay = real(1e-2))
      : Adam(std::move(params), lr, betas, eps, weight_decay, "AdamW", /*decoupled_decay=*/true) {}
};

}  // namespace ag::optim
