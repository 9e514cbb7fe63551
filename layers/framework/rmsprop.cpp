// RMSprop: a plain loop over each parameter's elements, inside NoGradGuard,
// in PyTorch's order of operations (formulas in rmsprop.hpp).
// (No formula ID: the articles give no optimizer formulas.)
#include "layers/framework/rmsprop.hpp"

#include <cmath>

#include "autograd/grad_mode.hpp"
#include "core/creation.hpp"

namespace ag::optim {

RMSprop::RMSprop(std::vector<Tensor> params, real lr, real alpha, real eps, real weight_decay,
                 real momentum, bool centered)
    : Optimizer(std::move(params), "RMSprop"),
      alpha_(alpha),
      eps_(eps),
      weight_decay_(weight_decay),
      momentum_(momentum),
      centered_(centered),
      state_(params_.size()) {
  set_lr(lr);
  check_hyper(alpha >= 0 && alpha < 1, "alpha", alpha, "0 <= alpha < 1");
  check_hyper(std::isfinite(eps) && eps >= 0, "eps", eps, "a finite eps >= 0");
  check_hyper(std::isfinite(weight_decay) && weight_decay >= 0, "weight_decay", weight_decay,
              "a finite weight_decay >= 0");
  check_hyper(std::isfinite(momentum) && momentum >= 0, "momentum", momentum,
              "a finite momentum >= 0");
}

void RMSprop::step() {
  NoGradGuard no_grad;
  const real lr = lr_, alpha = alpha_, eps = eps_, wd = weight_decay_, mu = momentum_;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& param = params_[i];
    const Tensor grad = param.grad();
    if (!grad.defined()) continue;  // not reached by backward: left alone
    State& s = state_[i];
    if (!s.square_avg.defined()) {
      s.square_avg = zeros(param.shape());
      if (centered_) s.grad_avg = zeros(param.shape());
      if (mu > 0) s.momentum_buffer = zeros(param.shape());
    }
    real* p = param.data();
    const real* dp = grad.data();
    real* v = s.square_avg.data();
    real* g_avg = centered_ ? s.grad_avg.data() : nullptr;
    real* buf = mu > 0 ? s.momentum_buffer.data() : nullptr;
    for (int64_t j = 0, n = param.numel(); j < n; ++j) {
      const real g = dp[j] + wd * p[j];
      // v = alpha v + (1 - alpha) g^2
      v[j] = v[j] * alpha + (1 - alpha) * g * g;
      real denom;
      if (g_avg) {
        // centered: g_avg = alpha g_avg + (1 - alpha) g;  denom = sqrt(v - g_avg^2) + eps
        g_avg[j] = g_avg[j] * alpha + (1 - alpha) * g;
        denom = std::sqrt(v[j] - g_avg[j] * g_avg[j]) + eps;
      } else {
        denom = std::sqrt(v[j]) + eps;
      }
      if (buf) {
        // buf = momentum buf + g / denom;  p = p - lr buf
        buf[j] = buf[j] * mu + g / denom;
        p[j] += -lr * buf[j];
      } else {
        // p = p - lr g / denom
        p[j] += -lr * (g / denom);
      }
    }
    ++param.impl()->version;  // an in-place change: a graph that saved p refuses to run backward
  }
}

}  // namespace ag::optim
