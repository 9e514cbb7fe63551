// The position-wise feed-forward network of a Transformer layer [F3.3].
// Seed 003 (section 3.3) describes it in words: after the weighted sum of the
// heads "a non-linear transform (such as ReLU) and a projection layer". As in
// Vaswani et al. (2017), the same two-layer network is applied to every
// position on its own:
//
//   FFN(x) = W_2 ReLU(W_1 x + b_1) + b_2      x: (..., d) -> (..., d_ff) -> (..., d)
//
// Names as in torch.nn.TransformerEncoderLayer: linear1, dropout, linear2.
// Fast mode runs ReLU(W_1 x + b_1) as the one op linear_relu (layers/basic/linear.hpp).
#pragma once

#include "layers/basic/dropout.hpp"
#include "layers/basic/linear.hpp"
#include "layers/framework/module.hpp"

namespace ag::nn {

class FeedForward : public UnaryModule {
 public:
  FeedForward(int64_t d_model, int64_t d_ff, real dropout = 0);
  // x (..., d_model) -> (..., d_model)
  Tensor forward(const Tensor& x) override;
  // residual + forward(x), residual of x's shape: a Transformer layer's
  // x + FFN(x). In fast mode the second layer's product writes the sum
  // itself (linear_plus_residual).
  Tensor forward_plus_residual(const Tensor& residual, const Tensor& x);

  int64_t d_model, d_ff;
  std::shared_ptr<Linear> linear1;   // W_1 (d_ff, d), b_1 (d_ff)
  std::shared_ptr<Dropout> dropout;  // on the hidden layer, in training only
  std::shared_ptr<Linear> linear2;   // W_2 (d, d_ff), b_2 (d)

 private:
  // FFN(x), added to residual when it is defined; x checked.
  Tensor run(const Tensor& x, const Tensor& residual);
};

}  // namespace ag::nn
