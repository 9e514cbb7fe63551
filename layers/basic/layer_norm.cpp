// LayerNorm, forward and backward side by side (one row of d features at a time).
#include "layers/basic/layer_norm.hpp"

#include <cmath>
#include <vector>

#include "autograd/node.hpp"
#include "autograd/ops.hpp"
#include "core/creation.hpp"
#include "core/error.hpp"
#include "core/kernels.hpp"
#include "core/mode.hpp"
#include "core/simd.hpp"
#include "layers/framework/init.hpp"

namespace ag::nn {

namespace {

void check_layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, real eps) {
  AG_CHECK(x.defined(), "layer_norm: the input is an undefined tensor");
  AG_CHECK(x.dim() >= 1 && x.shape().back() > 0,
           "layer_norm: input {} needs a last dimension of at least 1 feature", describe(x));
  const int64_t d = x.shape().back();
  for (const Tensor* p : {&weight, &bias})
    AG_CHECK(!p->defined() || p->shape() == Shape{d},
             "layer_norm: {} {} must have shape ({}), the last dim of input {}",
             p == &weight ? "weight" : "bias", describe(*p), d, describe(x));
  AG_CHECK(std::isfinite(eps) && eps >= 0, "layer_norm: eps must be finite and >= 0, got {}", eps);
}

// The loops of the forward and the backward, one row of d features at a time,
// compiled for the CPU's vector width (core/simd.hpp: no checks or allocations
// in here). gamma and beta may be null (no affine part): 1 and 0.
AG_SIMD_CLONES void layer_norm_rows(const real* in, const real* gamma, const real* beta, real eps,
                                    int64_t rows, int64_t d, real* x_hat, real* rstd,
                                    real* y) noexcept {
  for (int64_t r = 0; r < rows; ++r) {
    const real* xr = in + r * d;
    real* hr = x_hat + r * d;
    real* yr = y + r * d;
    // mu = 1/d sum_i x_i;  sigma^2 = 1/d sum_i (x_i - mu)^2   (biased, as PyTorch)
    const real mean = kernel::sum_lanes(d, [&](int64_t i) { return xr[i]; }) / real(d);
    const real var =
        kernel::sum_lanes(d, [&](int64_t i) { return (xr[i] - mean) * (xr[i] - mean); }) / real(d);
    const real s = 1 / std::sqrt(var + eps);
    rstd[r] = s;
    // [F3.6] LN(x) = gamma * (x - mu) / sqrt(sigma^2 + eps) + beta
    for (int64_t i = 0; i < d; ++i) hr[i] = (xr[i] - mean) * s;
    if (gamma && beta)
      for (int64_t i = 0; i < d; ++i) yr[i] = gamma[i] * hr[i] + beta[i];
    else
      for (int64_t i = 0; i < d; ++i) yr[i] = (gamma ? gamma[i] : 1) * hr[i] + (beta ? beta[i] : 0);
  }
}

// With n = g * gamma (the gradient reaching x_hat), per row of d features:
//   dL/dx_i   = rstd * (n_i - mean_j(n_j) - x_hat_i * mean_j(n_j * x_hat_j))
//   dL/dgamma = sum over rows of g * x_hat      dL/dbeta = sum over rows of g
// (x_hat depends on x through mu and rstd too: the two means are those paths.)
// grad_w and grad_b (null when there is no affine part) start at zero.
AG_SIMD_CLONES void layer_norm_backward_rows(const real* g, const real* x_hat, const real* rstd,
                                             const real* gamma, int64_t rows, int64_t d,
                                             real* grad_x, real* grad_w, real* grad_b) noexcept {
  for (int64_t r = 0; r < rows; ++r) {
    const real* gr = g + r * d;
    const real* hr = x_hat + r * d;
    real* dx = grad_x + r * d;
    // n_i = g_i * gamma_i, kept in dx until dx is written
    for (int64_t i = 0; i < d; ++i) dx[i] = gr[i] * (gamma ? gamma[i] : 1);
    const real mean_n = kernel::sum_lanes(d, [&](int64_t i) { return dx[i]; }) / real(d);
    const real mean_nh = kernel::sum_lanes(d, [&](int64_t i) { return dx[i] * hr[i]; }) / real(d);
    for (int64_t i = 0; i < d; ++i) dx[i] = rstd[r] * (dx[i] - mean_n - hr[i] * mean_nh);
    if (grad_w)
      for (int64_t i = 0; i < d; ++i) grad_w[i] += gr[i] * hr[i];
    if (grad_b)
      for (int64_t i = 0; i < d; ++i) grad_b[i] += gr[i];
  }
}

// The formula op by op: what reference mode runs.
Tensor layer_norm_composed(const Tensor& x, const Tensor& weight, const Tensor& bias, real eps) {
  // [F3.6] LN(x) = gamma * (x - mu) / sqrt(sigma^2 + eps) + beta, op by op
  Tensor mu = mean(x, -1, /*keepdim=*/true);                  // (..., 1)
  Tensor centered = x - mu;                                   // (..., d)
  Tensor var = mean(pow(centered, 2), -1, /*keepdim=*/true);  // (..., 1)
  Tensor y = centered / sqrt(var + eps);                      // (..., d)
  if (weight.defined()) y = y * weight;
  if (bias.defined()) y = y + bias;
  return y;
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, real eps) {
  check_layer_norm(x, weight, bias, eps);
  if (reference_mode()) return layer_norm_composed(x, weight, bias, eps);
  // Fast mode: the formula in one pass per row (layer_norm_rows above).
  const int64_t d = x.shape().back(), rows = x.numel() / d;
  Tensor y = Tensor::empty(x.shape());
  // Saved for backward, per row: x_hat = (x - mu) * rstd and rstd = 1/sqrt(var + eps).
  Tensor x_hat = Tensor::empty(x.shape());
  auto rstd = std::make_shared<std::vector<real>>(rows);
  layer_norm_rows(x.data(), weight.defined() ? weight.data() : nullptr,
                  bias.defined() ? bias.data() : nullptr, eps, rows, d, x_hat.data(), rstd->data(),
                  y.data());

  auto backward = [x_hat, rstd, weight, bias, d, rows](const Tensor& g, const Tensor&) {
    Tensor grad_x = Tensor::empty(g.shape());
    Tensor grad_w = weight.defined() ? zeros({d}) : Tensor();
    Tensor grad_b = bias.defined() ? zeros({d}) : Tensor();
    layer_norm_backward_rows(g.data(), x_hat.data(), rstd->data(),
                             weight.defined() ? weight.data() : nullptr, rows, d, grad_x.data(),
                             grad_w.defined() ? grad_w.data() : nullptr,
                             grad_b.defined() ? grad_b.data() : nullptr);
    Grads grads{grad_x};
    if (weight.defined()) grads.push_back(grad_w);
    if (bias.defined()) grads.push_back(grad_b);
    return grads;
  };
  std::vector<Tensor> inputs{x};
  if (weight.defined()) inputs.push_back(weight);
  if (bias.defined()) inputs.push_back(bias);
  record("LayerNormBackward", y, inputs, std::move(backward));
  return y;
}

LayerNorm::LayerNorm(int64_t normalized_shape, real eps, bool elementwise_affine)
    : UnaryModule("LayerNorm"), normalized_shape(normalized_shape), eps(eps) {
  AG_CHECK(normalized_shape > 0, "LayerNorm: normalized_shape must be positive, got {}",
           normalized_shape);
  AG_CHECK(std::isfinite(eps) && eps >= 0, "LayerNorm: eps must be finite and >= 0, got {}", eps);
  if (elementwise_affine) {
    weight = register_parameter("weight", ones({normalized_shape}, "LayerNorm"));
    bias = register_parameter("bias", zeros({normalized_shape}, "LayerNorm"));
  }
}

namespace {

// The module's input ends in the normalized_shape features its weight and bias have.
void check_normalized_input(const Tensor& x, int64_t normalized_shape) {
  check_defined(x, "LayerNorm");
  AG_CHECK(x.dim() >= 1 && x.shape().back() == normalized_shape,
           "LayerNorm: input {} must end in normalized_shape = {}", describe(x), normalized_shape);
}

}  // namespace

Tensor LayerNorm::forward(const Tensor& x) {
  check_normalized_input(x, normalized_shape);
  return layer_norm(x, weight, bias, eps);
}

std::string LayerNorm::extra_repr() const {
  return fmt::format("({},), eps={}, elementwise_affine={}", normalized_shape, eps,
                     weight.defined());
}

}  // namespace ag::nn
