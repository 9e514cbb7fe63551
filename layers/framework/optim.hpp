// Optimizers: SGD (with momentum and weight decay) and Adam, with PyTorch's
// update rules exactly (torch.optim.SGD, torch.optim.Adam -- not AdamW), and
// gradient clipping by global norm (torch.nn.utils.clip_grad_norm_).
// RMSprop (layers/framework/rmsprop.hpp), AdamW (layers/framework/adamw.hpp) and the learning-rate
// schedules (layers/framework/lr_scheduler.hpp) build on the Optimizer base below.
//
// [F2.8] the tutorials' tiny Transformer trains with Adam(lr 0.001) and
// cross-entropy (layers/framework/loss.hpp).
//
// The training loop reads as in PyTorch:
//
//   ag::optim::Adam opt(model.parameters(), /*lr=*/1e-3);
//   for (...) {
//     opt.zero_grad();
//     Tensor loss = ag::nn::cross_entropy(model.forward(x), y);
//     loss.backward();
//     opt.step();
//   }
//
// step() changes the parameters in place, inside NoGradGuard, with plain loops
// over their elements: it records no graph and allocates nothing but its state
// (momentum, Adam's moments), once, on the first step that reaches a parameter.
// Like every in-place change it bumps the parameters' versions, so a backward
// through a graph built before the step is refused instead of silently using the
// new values.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.hpp"

namespace ag::optim {

class LRScheduler;  // layers/framework/lr_scheduler.hpp

// The base of every optimizer: the parameters it updates and the learning rate.
class Optimizer {
 public:
  // Every parameter must be defined, a leaf, require grad, and appear once;
  // otherwise an ag::Error names the optimizer, the parameter's index and the
  // parameter ("SGD: parameter 1 'W' (2,3) does not require grad ...").
  explicit Optimizer(std::vector<Tensor> params, const char* name = "Optimizer");
  virtual ~Optimizer();
  // A copy would share its state buffers (momentum, moments) with the original
  // while looking independent: refused, as nn::Module's copy.
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter whose .grad is defined; parameters without a
  // gradient (not reached by backward) are skipped, as in PyTorch.
  virtual void step() = 0;

  // Clears every parameter's .grad (makes it undefined), like PyTorch's
  // zero_grad(set_to_none=True): the next backward writes fresh gradients.
  void zero_grad();

  const std::vector<Tensor>& params() const { return params_; }
  const std::string& name() const { return name_; }  // "SGD", "Adam"
  real lr() const { return lr_; }
  void set_lr(real lr);  // for schedules; lr >= 0
  // The lr every learning-rate scheduler of this optimizer starts from
  // (PyTorch's param_group["initial_lr"]): the lr when the first one was made.
  real initial_lr() const { return has_initial_lr_ ? initial_lr_ : lr_; }

 protected:
  // Throws "<name>: invalid <what> <value> (valid: <valid>)" unless ok.
  void check_hyper(bool ok, const char* what, real value, const char* valid) const;

  std::vector<Tensor> params_;
  std::string name_;
  real lr_ = 0;

 private:
  friend class LRScheduler;  // records initial_lr when it is made
  bool has_initial_lr_ = false;
  real initial_lr_ = 0;
};

// Stochastic gradient descent, torch.optim.SGD(params, lr, momentum, weight_decay)
// (dampening 0, no Nesterov). For each parameter p (any shape) with gradient
// grad (same shape), elementwise:
//
//   g   = grad + weight_decay * p                 (L2 penalty wd/2 |p|^2)
//   buf = g                          first step   (momentum > 0 only)
//   buf = momentum * buf + g         later steps
//   p   = p - lr * buf               (p - lr * g without momentum)
class SGD : public Optimizer {
 public:
  SGD(std::vector<Tensor> params, real lr, real momentum = 0, real weight_decay = 0);
  void step() override;

  real momentum() const { return momentum_; }
  real weight_decay() const { return weight_decay_; }

 private:
  real momentum_, weight_decay_;
  std::vector<Tensor> buffers_;  // one per parameter, undefined until its first step
};

// Adam, torch.optim.Adam(params, lr, betas, eps, weight_decay) (amsgrad off,
// weight decay added to the gradient, not decoupled as in AdamW). For each
// parameter p with gradient grad, elementwise, t = this parameter's step count
// (1 on its first update), m and v starting at 0:
//
//   g = grad + weight_decay * p
//   m = b1 m + (1 - b1) g                      first moment (mean of g)
//   v = b2 v + (1 - b2) g^2                    second moment (mean of g^2)
//   p = p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
//
// computed in PyTorch's order: step = lr / (1 - b1^t),
// denom = sqrt(v) / sqrt(1 - b2^t) + eps, p = p - step * m / denom
// (the bias corrections in double). The dividing by 1 - b^t undoes the pull of
// m and v towards their zero start: on step 1 the update is lr * g / (|g| + eps),
// about lr in size whatever the gradient's scale.
class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> params, real lr = real(1e-3),
       std::pair<real, real> betas = {real(0.9), real(0.999)}, real eps = real(1e-8),
       real weight_decay = 0);
  void step() override;

  std::pair<real, real> betas() const { return {beta1_, beta2_}; }
  real eps() const { return eps_; }
  real weight_decay() const { return weight_decay_; }

 protected:
  // For AdamW (layers/framework/adamw.hpp): the same moments, step counts and
  // bias corrections, with the weight decay taken out of the gradient.
  Adam(std::vector<Tensor> params, real lr, std::pair<real, real> betas, real eps,
       real weight_decay, const char* name, bool decoupled_decay);

 private:
  struct State {
    int64_t step = 0;  // updates made to this parameter
    Tensor m, v;       // the moments, same shape as the parameter, made on first use
  };
  real beta1_, beta2_, eps_, weight_decay_;
  bool decoupled_decay_;
  std::vector<State> state_;  // one per parameter
};

// Clips gradients by their global norm, torch.nn.utils.clip_grad_norm_(params,
// max_norm): with total = sqrt(sum over every defined p.grad of sum grad^2)
// (accumulated in double), every gradient is multiplied by
//   coef = max_norm / (total + 1e-6)     when coef < 1 (else left as is),
// so the gradients keep their direction and their total norm becomes max_norm.
// Returns total, the norm before clipping (check it is finite: a NaN norm leaves
// the gradients as they are). Parameters without a gradient are skipped; a parameter listed twice
// counts once. Each gradient tensor is scaled in place, as PyTorch does, so a handle to it
// (Tensor g = p.grad()) sees the clipped values.
real clip_grad_norm(const std::vector<Tensor>& params, real max_norm);

}  // namespace ag::optim
