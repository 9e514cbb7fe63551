// SGD, Adam and gradient clipping: plain loops over each parameter's elements,
// inside NoGradGuard. Formulas and their PyTorch equivalents in optim.hpp.
// Adam is what the tutorials' tiny Transformer trains with ([F2.8]).
#include "layers/framework/optim.hpp"

#include <cmath>
#include <unordered_set>

#include "autograd/grad_mode.hpp"
#include "autograd/node.hpp"
#include "core/creation.hpp"
#include "core/error.hpp"
#include "core/simd.hpp"

namespace ag::optim {

namespace {

// An in-place change of p's values, made by a raw loop: bump its version as the
// Tensor API's in-place ops do, so a graph that saved the old values refuses to
// run backward with the new ones.
void mark_changed(const Tensor& p) { ++p.impl()->version; }

bool finite_non_negative(real x) { return std::isfinite(x) && x >= 0; }

// Adam's update of one parameter's n elements (compiled per instruction set,
// core/simd.hpp: each line is a vector operation over 8 or 16 elements).
// sqrt(v)/sqrt(1 - b2^t) is computed as sqrt(v) times 1/sqrt(1 - b2^t) (made
// in double, once): the sqrt and the divisions are the loop's bottleneck, and
// one division fewer per element takes 100K parameters from 70 to 52 us
// (within an ulp of PyTorch's quotient).
AG_SIMD_CLONES void adam_update(real* p, const real* dp, real* m, real* v, int64_t n, real b1,
                                real b2, real eps, real wd, real step_size,
                                real inverse_bias_correction2_sqrt) noexcept {
  const real one_minus_b1 = 1 - b1, one_minus_b2 = 1 - b2;
  for (int64_t j = 0; j < n; ++j) {
    const real g = dp[j] + wd * p[j];
    // m = b1 m + (1 - b1) g, written m + (1 - b1)(g - m) as PyTorch's lerp_
    m[j] += one_minus_b1 * (g - m[j]);
    // v = b2 v + (1 - b2) g^2
    v[j] = v[j] * b2 + one_minus_b2 * g * g;
    // p = p - lr/(1 - b1^t) * m / (sqrt(v)/sqrt(1 - b2^t) + eps)
    const real denom = std::sqrt(v[j]) * inverse_bias_correction2_sqrt + eps;
    p[j] += -step_size * m[j] / denom;
  }
}

// AdamW's, in torch.optim.AdamW's order: the decay on p first, then Adam's
// step on the plain gradient (formulas in adamw.hpp).
AG_SIMD_CLONES void adamw_update(real* p, const real* g, real* m, real* v, int64_t n, real b1,
                                 real b2, real eps, real decay, real step_size,
                                 real inverse_bias_correction2_sqrt) noexcept {
  for (int64_t j = 0; j < n; ++j) {
    // p = p - lr * weight_decay * p, written p * (1 - lr * weight_decay) as PyTorch's mul_
    p[j] *= decay;
    // m = b1 m + (1 - b1) grad
    m[j] = m[j] * b1 + (1 - b1) * g[j];
    // v = b2 v + (1 - b2) grad^2
    v[j] = v[j] * b2 + (1 - b2) * g[j] * g[j];
    // p = p - lr/(1 - b1^t) * m / (sqrt(v)/sqrt(1 - b2^t) + eps)
    const real denom = std::sqrt(v[j]) * inverse_bias_correction2_sqrt + eps;
    p[j] += -step_size * m[j] / denom;
  }
}

}  // namespace

// ===================================================================================
// Optimizer
// ===================================================================================

Optimizer::Optimizer(std::vector<Tensor> params, const char* name)
    : params_(std::move(params)), name_(name) {
  AG_CHECK(!params_.empty(), "{}: got an empty list of parameters: nothing to optimize", name_);
  std::unordered_set<const TensorImpl*> seen;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    AG_CHECK(p.defined(), "{}: parameter {} is an undefined tensor", name_, i);
    AG_CHECK(p.is_leaf(),
             "{}: parameter {} {} is not a leaf: it was made by {}; an optimizer updates leaf "
             "tensors (give it the tensors it was computed from, or a detach()ed copy with "
             "requires_grad_())",
             name_, i, describe(p), p.grad_fn()->name);
    AG_CHECK(p.requires_grad(),
             "{}: parameter {} {} does not require grad, so backward never gives it a gradient; "
             "call requires_grad_() on it, or leave it out",
             name_, i, describe(p));
    AG_CHECK(seen.insert(p.impl()).second,
             "{}: parameter {} {} appears more than once in the list; each step would update it "
             "several times",
             name_, i, describe(p));
  }
}

Optimizer::~Optimizer() = default;

void Optimizer::zero_grad() {
  for (Tensor& p : params_) p.set_grad(Tensor());
}

void Optimizer::set_lr(real lr) {
  check_hyper(finite_non_negative(lr), "learning rate", lr, "a finite lr >= 0");
  lr_ = lr;
}

void Optimizer::check_hyper(bool ok, const char* what, real value, const char* valid) const {
  AG_CHECK(ok, "{}: invalid {} {} (valid: {})", name_, what, value, valid);
}

// ===================================================================================
// SGD
// ===================================================================================

SGD::SGD(std::vector<Tensor> params, real lr, real momentum, real weight_decay)
    : Optimizer(std::move(params), "SGD"),
      momentum_(momentum),
      weight_decay_(weight_decay),
      buffers_(params_.size()) {
  set_lr(lr);
  check_hyper(finite_non_negative(momentum), "momentum", momentum, "a finite momentum >= 0");
  check_hyper(finite_non_negative(weight_decay), "weight_decay", weight_decay,
              "a finite weight_decay >= 0");
}

void SGD::step() {
  NoGradGuard no_grad;
  const real lr = lr_, mu = momentum_, wd = weight_decay_;
  for (size_t i = 0; i < params_.size(); ++i) {
    Tensor& param = params_[i];
    const Tensor grad = param.grad();
    if (!grad.defined()) continue;  // not reached by backward: left alone
    real* p = param.data();
    const real* dp = grad.data();
    const int64_t n = param.numel();
    if (mu == 0) {
      // p = p - lr * (grad + wd p)
      for (int64_t j = 0; j < n; ++j) p[j] += -lr * (dp[j] + wd * p[j]);
    } else if (!buffers_[i].defined()) {
      // first step: buf = g = grad + wd p;  p = p - lr * buf
      buffers_[i] = Tensor::empty(param.shape());
      real* buf = buffers_[i].data();
      for (int64_t j = 0; j < n; ++j) {
        buf[j] = dp[j] + wd * p[j];
        p[j] += -lr * buf[j];
      }
    } else {
      // buf = momentum buf + g;  p = p - lr * buf
      real* buf = buffers_[i].data();
      for (int64_t j = 0; j < n; ++j) {
        buf[j] = buf[j] * mu + (dp[j] + wd * p[j]);
        p[j] += -lr * buf[j];
      }
    }
    mark_changed(param);
  }
}

// ===================================================================================
// Adam
// ===================================================================================

Adam::Adam(std::vector<Tensor> params, real lr, std::pair<real, real> betas, real eps,
           real weight_decay)
    : Adam(std::move(params), lr, betas, eps, weight_decay, "Adam", /*decoupled_decay=*/false) {}

Adam::Adam(std::vector<Tensor> params, real lr, std::pair<real, real> betas, real eps,
           real weight_decay, const char* name, bool decoupled_decay)
    : Optimizer(std::move(params), name),
      beta1_(betas.first),
      beta2_(betas.second),
      eps_(eps),
      weight_decay_(weight_decay),
      decoupled_decay_(decoupled_decay),
      state_(params_.size()) {
  set_lr(lr);
  check_hyper(beta1_ >= 0 && beta1_ < 1, "beta1", beta1_, "0 <= beta1 < 1");
  check_hyper(beta2_ >= 0 && beta2_ < 1, "beta2", beta2_, "0 <= beta2 < 1");
  check_hyper(finite_non_negative(eps), "eps", eps, "a finite eps >= 0");
  check_hyper(finite_non_negative(weight_decay), "weight_decay", weight_decay,
              "a finite weight_decay >= 0");
}

void Adam::step() {
  NoGradGuard no_grad;
  const real b1 = beta1_, b2 = beta2_, eps = eps_, wd = weight_decay_;
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
    const real inverse_sqrt2 = static_cast<real>(1 / std::sqrt(bias_correction2));
    if (decoupled_decay_)
      adamw_update(param.data(), grad.data(), s.m.data(), s.v.data(), param.numel(), b1, b2, eps,
                   1 - lr_ * wd, step_size, inverse_sqrt2);
    else
      adam_update(param.data(), grad.data(), s.m.data(), s.v.data(), param.numel(), b1, b2, eps,
                  wd, step_size, inverse_sqrt2);
    mark_changed(param);
  }
}

// ===================================================================================
// clip_grad_norm
// ===================================================================================

namespace {

void check_clip_grad_norm(const std::vector<Tensor>& params, real max_norm) {
  AG_CHECK(!std::isnan(max_norm) && max_norm >= 0,
           "clip_grad_norm: invalid max_norm {} (valid: max_norm >= 0)", max_norm);
  for (size_t i = 0; i < params.size(); ++i)
    AG_CHECK(params[i].defined(), "clip_grad_norm: parameter {} is an undefined tensor", i);
}

}  // namespace

real clip_grad_norm(const std::vector<Tensor>& params, real max_norm) {
  check_clip_grad_norm(params, max_norm);
  NoGradGuard no_grad;
  // The distinct parameters that have a gradient.
  std::vector<Tensor> with_grad;
  std::unordered_set<const TensorImpl*> seen;
  for (const Tensor& p : params)
    if (p.impl()->grad && seen.insert(p.impl()).second) with_grad.push_back(p);
  // total = sqrt(sum_p sum_j grad_pj^2)
  double sum_squares = 0;
  for (const Tensor& p : with_grad) {
    const real* g = p.impl()->grad->data.data();
    for (int64_t j = 0, n = p.numel(); j < n; ++j) sum_squares += double(g[j]) * double(g[j]);
  }
  const double total = std::sqrt(sum_squares);
  // coef = max_norm / (total + 1e-6), applied only when it shrinks the gradients
  const double coef = double(max_norm) / (total + 1e-6);
  if (coef < 1)  // in place, as PyTorch: a handle to p.grad sees the clipped values
    for (const Tensor& p : with_grad) Tensor(p.impl()->grad).mul_(static_cast<real>(coef));
  return static_cast<real>(total);
}

}  // namespace ag::optim
