// Linear: y = x W^T + b, as torch.nn.Linear.
//
// The affine map behind every projection in the seeds: the point-attention
// score [F0.1] e = W_e x + b_e, the query/key/value projections [F2.2], the
// output projection of multi-head attention [F0.10] and the feed-forward
// layers [F3.3] are all Linear layers.
#pragma once

#include "layers/framework/module.hpp"

namespace ag::nn {

// y = x W^T + b, fused: one GEMM reading W transposed (no copy), the bias added
// in the same pass, and one node whose backward is three GEMM-sized steps.
//   x: (..., in)   weight: (out, in)   bias: (out) or undefined   ->   y: (..., out)
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// relu(linear(x, weight, bias)) as one op: what nn::Sequential runs for a
// Linear followed by a ReLU, and FeedForward for its first layer. Reference
// mode runs those two ops as written; fast mode never stores x W^T + b and
// masks the gradient on its way through (layers/basic/linear_relu.cpp).
// Errors name `linear`, as the unfused layers do.
Tensor linear_relu(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// residual + linear(x, weight, bias) as one op: a layer's output joining a
// residual stream (the Transformer's x + SelfAttn(...), x + FFN(...)).
// Reference mode runs the two ops as written; fast mode starts the output as
// residual + b and lets the GEMM add x W^T (layers/basic/linear_residual.cpp).
// residual has the output's shape (..., out). Errors about x, weight and bias
// name `linear`, as linear_relu's do.
Tensor linear_plus_residual(const Tensor& x, const Tensor& weight, const Tensor& bias,
                            const Tensor& residual);

class Linear : public UnaryModule {
 public:
  // PyTorch's default initialisation (kaiming_uniform_ with a = sqrt(5)):
  // weight and bias both ~ U(-1/sqrt(in), 1/sqrt(in)).
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  int64_t in_features, out_features;
  Tensor weight;  // (out, in)
  Tensor bias;    // (out), undefined when bias = false
};

}  // namespace ag::nn
