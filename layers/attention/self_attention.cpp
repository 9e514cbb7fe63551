// Seed 003's SelfAttention [F3.5]: each line of its forward is a line here.
#include "layers/attention/self_attention.hpp"

#include <cmath>

#include "autograd/ops.hpp"
#include "core/error.hpp"

namespace ag::nn {

SelfAttention::SelfAttention(int64_t d_model, real dropout_p)
    : UnaryModule("SelfAttention"), d_model(d_model) {
  AG_CHECK(d_model > 0, "SelfAttention: d_model must be positive, got {}", d_model);
  query = register_module("query", std::make_shared<Linear>(d_model, d_model));
  key = register_module("key", std::make_shared<Linear>(d_model, d_model));
  value = register_module("value", std::make_shared<Linear>(d_model, d_model));
  // [F3.5] the seed creates self.dropout and never calls it (see the header)
  dropout = register_module("dropout", std::make_shared<Dropout>(dropout_p));
  out = register_module("out", std::make_shared<Linear>(d_model, d_model));
}

AttentionOutput SelfAttention::forward_with_weights(const Tensor& x) {
  AG_CHECK(x.defined() && x.dim() >= 2 && x.shape().back() == d_model,
           "SelfAttention: input {} must be (..., time, d_model = {})", describe(x), d_model);
  // [F3.5] q = self.query(x); k = self.key(x); v = self.value(x)       (B,T,d)
  Tensor q = query->forward(x);
  Tensor k = key->forward(x);
  Tensor v = value->forward(x);
  // [F3.5] scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.d_model)   (B,T,T)
  Tensor scores = matmul(q, transpose(k, -2, -1)) / std::sqrt(static_cast<real>(d_model));
  // [F3.5] attention = F.softmax(scores, dim=-1)                       (B,T,T)
  Tensor attention = softmax(scores, -1);
  // [F3.5] out = torch.matmul(attention, v)                            (B,T,d)
  Tensor attended = matmul(attention, v);
  // [F3.5] out += x  (the residual, before the projection; no layer norm follows)
  attended = attended + x;
  // [F3.5] return self.out(out)                                        (B,T,d)
  return {out->forward(attended), attention};
}

Tensor SelfAttention::forward(const Tensor& x) { return forward_with_weights(x).context; }

std::string SelfAttention::extra_repr() const { return fmt::format("d_model={}", d_model); }

}  // namespace ag::nn
