// SelfAttention, seed 003's PyTorch class (section 5) line by line [F3.5],
// with the same submodule names (query, key, value, dropout, out), so its
// weights load from that code's state_dict by name.
//
//   x (B,T,d) -> q, k, v = query(x), key(x), value(x)               (B,T,d)
//             -> scores = q k^T / sqrt(d_model)                      (B,T,T)
//             -> attention = softmax(scores, dim=-1)                 (B,T,T)
//             -> out = attention v; out += x; return out_linear(out) (B,T,d)
//
// What the seed's code does, kept as it is:
//   - one head, so d_k = d_model and the scale 1/sqrt(d_model) is F1.1's;
//   - the residual `out += x` is added BEFORE the output projection, so the
//     result is out(attention v + x), not x + out(attention v) as in a
//     Transformer layer (nn::TransformerEncoderLayer does the latter);
//   - the comment "residual connection & layer normalization" names a layer
//     norm that the code never applies; none is applied here either;
//   - `self.dropout` is created and never called: it is registered (so the
//     module prints as the seed's) and unused.
#pragma once

#include "layers/attention/attention_output.hpp"
#include "layers/basic/dropout.hpp"
#include "layers/basic/linear.hpp"
#include "layers/framework/module.hpp"

namespace ag::nn {

class SelfAttention : public UnaryModule {
 public:
  explicit SelfAttention(int64_t d_model = 512, real dropout = real(0.1));
  // x: (B,T,d_model) or (T,d_model) -> the same shape, as the seed's forward.
  Tensor forward(const Tensor& x) override;
  // The same computation, also returning the attention weights (..., T, T).
  AttentionOutput forward_with_weights(const Tensor& x);
  std::string extra_repr() const override;

  int64_t d_model;
  std::shared_ptr<Linear> query, key, value;
  std::shared_ptr<Dropout> dropout;  // unused, as in the seed
  std::shared_ptr<Linear> out;
};

}  // namespace ag::nn
