// LayerNorm over the last dimension, as torch.nn.LayerNorm(d) [F3.6]: each
// row of d features is shifted to mean 0 and scaled to variance 1, then
// stretched and shifted per feature by the learned gamma (weight) and beta
// (bias). Seed 003 names "residual connection and layer normalization"
// without a formula; this is the standard one (Ba et al., 2016).
#pragma once

#include "layers/framework/module.hpp"

namespace ag::nn {

// [F3.6] LN(x) = gamma * (x - mu) / sqrt(sigma^2 + eps) + beta   over the last dim
//   x: (..., d)   weight, bias: (d), or undefined for no affine part   ->   (..., d)
// Reference mode composes it of ordinary ops (mean, sub, pow, sqrt, div, mul,
// add), every step visible; fast mode runs one fused pass forward and one
// closed-form backward (see layer_norm.cpp). The tests compare the two.
Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, real eps = 1e-5);

class LayerNorm : public UnaryModule {
 public:
  // PyTorch's default initialisation: weight (gamma) = 1, bias (beta) = 0.
  explicit LayerNorm(int64_t normalized_shape, real eps = 1e-5, bool elementwise_affine = true);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  int64_t normalized_shape;
  real eps;
  Tensor weight;  // gamma (d), undefined without elementwise_affine
  Tensor bias;    // beta  (d)
};

}  // namespace ag::nn
