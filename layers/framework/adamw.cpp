// AdamW: a plain loop over each parameter's elements, inside NoGradGuard, in
// PyTorch's order of operations (formulas in adamw.hpp).
// (No formula ID: the articles give no optimizer formulas.)
#include "layers/framework/adamw.hpp"

#include <cmath>

#include "autograd/grad_mode.hpp"
#include "core/creation.hpp"

namespace ag::optim {

AdamW::AdamW(std::vector<Tensor> params, real lr, std::pair<real, real> betas, real eps,
             real weight_decay)
    : Optimizer(std::move(params), "AdamW"),
      beta1_(betas.first),
      beta2_(betas.second),
      eps_(eps),
      weight_decay_(weight_decay),
      state_(params_.size()) {
  set_lr(lr);
  check_hyper(beta1_ >= 0 && beta1_ < 1, "beta1", beta1_, "0 <= beta1 < 1");
  check_hyper(beta2_ >= 0 && beta2_ < 1, "beta2", beta2_, "0 <= beta2 < 1");
  check_hyper(std::isfinite(eps) && eps >= 0, "eps", eps, "a finite eps >= 0");
  check_hyper(std::isfinite(weight_decay) && weight_decay >= 0, "weight_decay", weight_decay,
              "a finite weight_decay >= 0");
}

void AdamW::step() {
  NoGradGuard no_grad;
  const real b1 = beta1_, b2 = beta2_, eps = eps_;
  const real decay = 1 - lr_ * weight_decay_;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& param = params_[i];
    const Tensor grad = param.grad();
    if (!grad.defined()) continue;  // not reached by backward: left alone, t not advanced
    State& s = state_[i];
    if (!s.m.defined()) {
      s.m = zeros(param.shape());
      s.v = zeros(param.shape());
    }
    const int64_t t = ++s.step;
    // Bias corrections in double, as PyTorch computes them (Python floats).
    const double bias_correction1 = 1 - std::pow(double(b1), double(t));
    const double bias_correction2 = 1 - std::pow(double(b2), double(t));
    const real step_size = static_cast<real>(double(lr_) / bias_correction1);
    const real bias_correction2_sqrt = static_cast<real>(std::sqrt(bias_correction2));
    real* p = param.data();
    const real* g = grad.data();
    real* m = s.m.data();
    real* v = s.v.data();
    for (int64_t j = 0, n = param.numel(); j < n; ++j) {
      // p = p - lr * weight_decay * p, written p * (1 - lr * weight_decay) as PyTorch's mul_
      p[j] *= decay;
      // m = b1 m + (1 - b1) grad
      m[j] = m[j] * b1 + (1 - b1) * g[j];
      // v = b2 v + (1 - b2) grad^2
      v[j] = v[j] * b2 + (1 - b2) * g[j] * g[j];
      // p = p - lr/(1 - b1^t) * m / (sqrt(v)/sqrt(1 - b2^t) + eps)
      const real denom = std::sqrt(v[j]) / bias_correction2_sqrt + eps;
      p[j] += -step_size * m[j] / denom;
    }
    ++param.impl()->version;  // an in-place change: a graph that saved p refuses to run backward
  }
}

}  // namespace ag::optim
