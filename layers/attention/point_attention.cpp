#include "layers/attention/point_attention.hpp"

#include "autograd/ops.hpp"
#include "core/error.hpp"
#include "core/mode.hpp"
#include "layers/attention/attention_scores.hpp"

namespace ag::nn {

PointAttention::PointAttention(int64_t hidden_size)
    : Module("PointAttention"), hidden_size(hidden_size) {
  linear = register_module("linear", std::make_shared<Linear>(hidden_size, 1));
}

namespace {

// x (B,T,H), H the features the score's Linear reads.
void check_point_attention(const Tensor& x, int64_t hidden_size) {
  check_defined(x, "PointAttention");
  AG_CHECK(x.dim() == 3 && x.shape()[2] == hidden_size,
           "PointAttention: input {} must be (batch, time, hidden = {})", describe(x), hidden_size);
}

// x (B,T,H) and one context (B,H) per sequence.
void check_add_context(const Tensor& x, const Tensor& context) {
  check_defined(x, "add_context", "input x");
  check_defined(context, "add_context", "context");
  AG_CHECK(x.dim() == 3 && context.dim() == 2 && context.shape()[0] == x.shape()[0] &&
               context.shape()[1] == x.shape()[2],
           "add_context: x {} must be (B,T,H) and context {} (B,H)", describe(x),
           describe(context));
}

}  // namespace

AttentionOutput PointAttention::forward(const Tensor& x) {
  check_point_attention(x, hidden_size);
  // [F0.1] e_i = W_e x_i + b_e                        x: (B,T,H) -> e: (B,T,1)
  Tensor e = linear->forward(x);
  // [F0.2] a_i = exp(e_i) / sum_j exp(e_j)            over the sequence axis (dim 1)
  Tensor a = softmax(e, /*dim=*/1);
  // Fast mode: the weighted sum below in one pass, forward and backward, without
  // the (B,T,H) product (weighted_context's fast twin, layers/attention/attention_scores.cpp).
  if (!reference_mode()) return {weighted_context(reshape(a, {x.size(0), x.size(1)}), x), a};
  // [F0.4] context = sum_i a_i x_i                    (B,T,1) * (B,T,H) -> (B,H)
  Tensor context = sum(a * x, /*dim=*/1);
  return {context, a};
}

Tensor add_context(const Tensor& x, const Tensor& context) {
  check_add_context(x, context);
  // [F0.3] h_t = x_t + sum_i a_i h_i                  (B,T,H) + (B,1,H) -> (B,T,H)
  return x + unsqueeze(context, 1);
}

}  // namespace ag::nn
