// LayerNorm, forward and backward side by side (one row of d features at a time).
#include "layers/basic/layer_norm.hpp"

#include <cmath>
#include <cstring>
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

// The loops of the forward and the backward over `count` rows of d features
// at once (4, then 1 for the rows left over), compiled for the CPU's vector
// width (core/simd.hpp: no checks or allocations in here). Each row's sums run
// in a Lanes register, folded at the end (the last d % lanes_of_real features
// one at a time), and the rows' chains of adds overlap: the forward of
// (1024,64) takes 21.5 us where a row at a time took 26.1. gamma and beta may
// be null (no affine part): 1 and 0.
constexpr int rows_together = 4;

template <int count>
AG_ALWAYS_INLINE void layer_norm_some_rows(const real* x, const real* gamma, const real* beta,
                                           real eps, int64_t d, real* mean, real* rstd, real* y) {
  const int64_t whole = d - d % lanes_of_real;
  // mu = 1/d sum_i x_i;  sigma^2 = 1/d sum_i (x_i - mu)^2   (biased, as PyTorch)
  Lanes sum[count] = {};
  for (int64_t i = 0; i < whole; i += lanes_of_real)
    for (int r = 0; r < count; ++r) {
      Lanes xr;
      std::memcpy(&xr, x + r * d + i, sizeof xr);
      sum[r] += xr;
    }
  for (int r = 0; r < count; ++r) {
    real total = fold_sum(sum[r]);
    for (int64_t i = whole; i < d; ++i) total += x[r * d + i];
    mean[r] = total / real(d);
  }
  Lanes squares[count] = {};
  for (int64_t i = 0; i < whole; i += lanes_of_real)
    for (int r = 0; r < count; ++r) {
      Lanes centered;
      std::memcpy(&centered, x + r * d + i, sizeof centered);
      centered -= mean[r];
      squares[r] += centered * centered;
    }
  for (int r = 0; r < count; ++r) {
    real total = fold_sum(squares[r]);
    for (int64_t i = whole; i < d; ++i) total += (x[r * d + i] - mean[r]) * (x[r * d + i] - mean[r]);
    rstd[r] = 1 / std::sqrt(total / real(d) + eps);
  }
  for (int r = 0; r < count; ++r) {
    const real* xr = x + r * d;
    real* yr = y + r * d;
    const real m = mean[r], s = rstd[r];
    // [F3.6] LN(x) = gamma * (x - mu) / sqrt(sigma^2 + eps) + beta
    if (gamma && beta)
      for (int64_t i = 0; i < d; ++i) yr[i] = gamma[i] * ((xr[i] - m) * s) + beta[i];
    else
      for (int64_t i = 0; i < d; ++i)
        yr[i] = (gamma ? gamma[i] : 1) * ((xr[i] - m) * s) + (beta ? beta[i] : 0);
  }
}

AG_SIMD_CLONES void layer_norm_rows(const real* x, const real* gamma, const real* beta, real eps,
                                    int64_t rows, int64_t d, real* mean, real* rstd,
                                    real* y) noexcept {
  int64_t r = 0;
  for (; r + rows_together <= rows; r += rows_together)
    layer_norm_some_rows<rows_together>(x + r * d, gamma, beta, eps, d, mean + r, rstd + r,
                                        y + r * d);
  for (; r < rows; ++r)
    layer_norm_some_rows<1>(x + r * d, gamma, beta, eps, d, mean + r, rstd + r, y + r * d);
}

// With x_hat = (x - mu) * rstd (from the saved mu and rstd) and n = g * gamma
// (the gradient reaching x_hat), per row of d features:
//   dL/dx_i   = rstd * (n_i - mean_j(n_j) - x_hat_i * mean_j(n_j * x_hat_j))
//   dL/dgamma = sum over rows of g * x_hat      dL/dbeta = sum over rows of g
// (x_hat depends on x through mu and rstd too: the two means are those paths.)
// grad_x may be g itself: each feature of g is read before its dL/dx is
// written. With add_to_grad_x, dL/dx is added to what grad_x holds (x's
// gradient from its other users; grad_x is then not g). grad_w and grad_b
// (null when there is no affine part) are added to.
template <int count>
AG_ALWAYS_INLINE void layer_norm_backward_some_rows(const real* g, const real* x,
                                                    const real* mean, const real* rstd,
                                                    const real* gamma, int64_t d, real* grad_x,
                                                    bool add_to_grad_x, real* grad_w,
                                                    real* grad_b) {
  const int64_t whole = d - d % lanes_of_real;
  auto x_hat = [&](int r, int64_t i) { return (x[r * d + i] - mean[r]) * rstd[r]; };
  auto n = [&](int r, int64_t i) { return g[r * d + i] * (gamma ? gamma[i] : 1); };
  Lanes sum_n[count] = {}, sum_nh[count] = {};
  for (int64_t i = 0; i < whole; i += lanes_of_real) {
    Lanes gm = Lanes{} + 1, nr, hr;
    if (gamma) std::memcpy(&gm, gamma + i, sizeof gm);
    for (int r = 0; r < count; ++r) {
      std::memcpy(&nr, g + r * d + i, sizeof nr);
      std::memcpy(&hr, x + r * d + i, sizeof hr);
      nr *= gm;
      hr = (hr - mean[r]) * rstd[r];
      sum_n[r] += nr;
      sum_nh[r] += nr * hr;
    }
  }
  real mean_n[count], mean_nh[count];
  for (int r = 0; r < count; ++r) {
    real total_n = fold_sum(sum_n[r]), total_nh = fold_sum(sum_nh[r]);
    for (int64_t i = whole; i < d; ++i) {
      total_n += n(r, i);
      total_nh += n(r, i) * x_hat(r, i);
    }
    mean_n[r] = total_n / real(d);
    mean_nh[r] = total_nh / real(d);
  }
  // grad_w and grad_b take the rows' terms in one pass over each chunk of them
  for (int64_t i = 0; i < whole; i += lanes_of_real) {
    Lanes gm = Lanes{} + 1, sum_gh = {}, sum_g = {}, gr, hr;
    if (gamma) std::memcpy(&gm, gamma + i, sizeof gm);
    for (int r = 0; r < count; ++r) {
      std::memcpy(&gr, g + r * d + i, sizeof gr);
      std::memcpy(&hr, x + r * d + i, sizeof hr);
      hr = (hr - mean[r]) * rstd[r];
      sum_gh += gr * hr;
      sum_g += gr;
      Lanes dx = rstd[r] * (gr * gm - mean_n[r] - hr * mean_nh[r]), before;
      if (add_to_grad_x) {
        std::memcpy(&before, grad_x + r * d + i, sizeof before);
        dx += before;
      }
      std::memcpy(grad_x + r * d + i, &dx, sizeof dx);
    }
    if (grad_w)
      for (int j = 0; j < lanes_of_real; ++j) grad_w[i + j] += sum_gh[j];
    if (grad_b)
      for (int j = 0; j < lanes_of_real; ++j) grad_b[i + j] += sum_g[j];
  }
  for (int64_t i = whole; i < d; ++i)
    for (int r = 0; r < count; ++r) {
      const real gi = g[r * d + i], hi = x_hat(r, i);
      if (grad_w) grad_w[i] += gi * hi;
      if (grad_b) grad_b[i] += gi;
      const real dx = rstd[r] * (n(r, i) - mean_n[r] - hi * mean_nh[r]);
      grad_x[r * d + i] = add_to_grad_x ? grad_x[r * d + i] + dx : dx;
    }
}

AG_SIMD_CLONES void layer_norm_backward_rows(const real* g, const real* x, const real* mean,
                                             const real* rstd, const real* gamma, int64_t rows,
                                             int64_t d, real* grad_x, bool add_to_grad_x,
                                             real* grad_w, real* grad_b) noexcept {
  int64_t r = 0;
  for (; r + rows_together <= rows; r += rows_together)
    layer_norm_backward_some_rows<rows_together>(g + r * d, x + r * d, mean + r, rstd + r, gamma,
                                                 d, grad_x + r * d, add_to_grad_x, grad_w, grad_b);
  for (; r < rows; ++r)
    layer_norm_backward_some_rows<1>(g + r * d, x + r * d, mean + r, rstd + r, gamma, d,
                                     grad_x + r * d, add_to_grad_x, grad_w, grad_b);
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
  // Saved for backward, per row: mu and rstd = 1/sqrt(var + eps); x_hat is
  // computed again from x there, as it is needed (x is kept as the op's input).
  auto mean = std::make_shared<std::vector<real>>(rows);
  auto rstd = std::make_shared<std::vector<real>>(rows);
  layer_norm_rows(x.data(), weight.defined() ? weight.data() : nullptr,
                  bias.defined() ? bias.data() : nullptr, eps, rows, d, mean->data(), rstd->data(),
                  y.data());

  auto backward = [x, mean, rstd, weight, bias, d, rows](const Tensor& g, const Tensor&,
                                                          const GradSums& sums) {
    // dL/dx added to x's gradient from its other users when the engine
    // alone holds that sum (the residual's g, in a pre-norm block: one pass
    // fewer than a sum after the fact); else written over g when the engine
    // alone holds g; else written to a new tensor
    Tensor grad_x = sums.existing(0);
    const bool add_to_grad_x = grad_x.defined();
    if (!add_to_grad_x) grad_x = sums.output_gradient_or_new(g);
    Tensor grad_w = weight.defined() ? zeros({d}) : Tensor();
    Tensor grad_b = bias.defined() ? zeros({d}) : Tensor();
    layer_norm_backward_rows(g.data(), x.data(), mean->data(), rstd->data(),
                             weight.defined() ? weight.data() : nullptr, rows, d, grad_x.data(),
                             add_to_grad_x,
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
