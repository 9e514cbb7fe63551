// LayerNorm, forward and backward side by side (one row of d features at a time).
#include "layers/layer_norm.hpp"

#include "core/error.hpp"

#include <cmath>
#include <vector>

#include "autograd/node.hpp"
#include "autograd/ops.hpp"
#include "core/creation.hpp"
#include "layers/init.hpp"

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
  AG_CHECK(eps >= 0, "layer_norm: eps must be >= 0, got {}", eps);
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, real eps) {
  check_layer_norm(x, weight, bias, eps);
  const int64_t d = x.shape().back(), rows = x.numel() / d;
  Tensor y = Tensor::empty(x.shape());
  // Saved for backward, per row: x_hat = (x - mu) * rstd and rstd = 1/sqrt(var + eps).
  Tensor x_hat = Tensor::empty(x.shape());
  auto rstd = std::make_shared<std::vector<real>>(rows);
  const real* in = x.data();
  const real* gamma = weight.defined() ? weight.data() : nullptr;
  const real* beta = bias.defined() ? bias.data() : nullptr;
  for (int64_t r = 0; r < rows; ++r) {
    const real* xr = in + r * d;
    real* hr = x_hat.data() + r * d;
    real* yr = y.data() + r * d;
    // mu = 1/d sum_i x_i;  sigma^2 = 1/d sum_i (x_i - mu)^2   (biased, as PyTorch)
    double mean = 0, var = 0;
    for (int64_t i = 0; i < d; ++i) mean += xr[i];
    mean /= static_cast<double>(d);
    for (int64_t i = 0; i < d; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    var /= static_cast<double>(d);
    const real s = static_cast<real>(1 / std::sqrt(var + eps));
    (*rstd)[r] = s;
    // [F3.6] LN(x) = gamma * (x - mu) / sqrt(sigma^2 + eps) + beta
    for (int64_t i = 0; i < d; ++i) {
      hr[i] = static_cast<real>((xr[i] - mean) * s);
      yr[i] = (gamma ? gamma[i] : 1) * hr[i] + (beta ? beta[i] : 0);
    }
  }

  // With n = g * gamma (the gradient reaching x_hat), per row of d features:
  //   dL/dx_i   = rstd * (n_i - mean_j(n_j) - x_hat_i * mean_j(n_j * x_hat_j))
  //   dL/dgamma = sum over rows of g * x_hat      dL/dbeta = sum over rows of g
  // (x_hat depends on x through mu and rstd too: the two means are those paths.)
  auto backward = [x_hat, rstd, weight, bias, d, rows](const Tensor& g, const Tensor&) {
    Tensor grad_x = Tensor::empty(g.shape());
    Tensor grad_w = weight.defined() ? zeros({d}) : Tensor();
    Tensor grad_b = bias.defined() ? zeros({d}) : Tensor();
    const real* gamma = weight.defined() ? weight.data() : nullptr;
    for (int64_t r = 0; r < rows; ++r) {
      const real* gr = g.data() + r * d;
      const real* hr = x_hat.data() + r * d;
      double mean_n = 0, mean_nh = 0;
      for (int64_t i = 0; i < d; ++i) {
        const real n = gr[i] * (gamma ? gamma[i] : 1);
        mean_n += n;
        mean_nh += n * hr[i];
      }
      mean_n /= static_cast<double>(d);
      mean_nh /= static_cast<double>(d);
      real* dx = grad_x.data() + r * d;
      for (int64_t i = 0; i < d; ++i) {
        const real n = gr[i] * (gamma ? gamma[i] : 1);
        dx[i] = static_cast<real>((*rstd)[r] * (n - mean_n - hr[i] * mean_nh));
      }
      if (grad_w.defined())
        for (int64_t i = 0; i < d; ++i) grad_w.data()[i] += gr[i] * hr[i];
      if (grad_b.defined())
        for (int64_t i = 0; i < d; ++i) grad_b.data()[i] += gr[i];
    }
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

Tensor layer_norm_composed(const Tensor& x, const Tensor& weight, const Tensor& bias, real eps) {
  check_layer_norm(x, weight, bias, eps);
  // [F3.6] LN(x) = gamma * (x - mu) / sqrt(sigma^2 + eps) + beta, op by op
  Tensor mu = mean(x, -1, /*keepdim=*/true);                    // (..., 1)
  Tensor centered = x - mu;                                     // (..., d)
  Tensor var = mean(pow(centered, 2), -1, /*keepdim=*/true);    // (..., 1)
  Tensor y = centered / sqrt(var + eps);                        // (..., d)
  if (weight.defined()) y = y * weight;
  if (bias.defined()) y = y + bias;
  return y;
}

LayerNorm::LayerNorm(int64_t normalized_shape, real eps, bool elementwise_affine)
    : UnaryModule("LayerNorm"), normalized_shape(normalized_shape), eps(eps) {
  AG_CHECK(normalized_shape > 0, "LayerNorm: normalized_shape must be positive, got {}",
           normalized_shape);
  AG_CHECK(eps >= 0, "LayerNorm: eps must be >= 0, got {}", eps);
  if (elementwise_affine) {
    weight = register_parameter("weight", ones({normalized_shape}));
    bias = register_parameter("bias", zeros({normalized_shape}));
  }
}

Tensor LayerNorm::forward(const Tensor& x) {
  AG_CHECK(x.dim() >= 1 && x.shape().back() == normalized_shape,
           "LayerNorm: input {} must end in normalized_shape = {}", describe(x), normalized_shape);
  return layer_norm(x, weight, bias, eps);
}

std::string LayerNorm::extra_repr() const {
  return fmt::format("({},), eps={}, elementwise_affine={}", normalized_shape, eps,
                     weight.defined());
}

}  // namespace ag::nn
