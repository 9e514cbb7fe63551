// Multi-head attention: project, split the features into heads, attend per
// head, concatenate, project. Written plainly, one step a line.
#include "layers/multi_head_attention.hpp"

#include "autograd/ops.hpp"
#include "core/error.hpp"
#include "layers/scaled_dot_product.hpp"

namespace ag::nn {

Tensor split_heads(const Tensor& x, int64_t heads) {
  AG_CHECK(x.dim() == 3 && heads > 0 && x.size(2) % heads == 0,
           "split_heads: input {} must be (B,T,d) with d divisible by heads = {}", describe(x),
           heads);
  const int64_t batch = x.size(0), time = x.size(1), head_dim = x.size(2) / heads;
  // [F0.8] the features of each position cut into h consecutive pieces of d/h,
  // then the heads dim moved before time:  (B,T,d) -> (B,T,h,d_h) -> (B,h,T,d_h)
  return transpose(reshape(x, {batch, time, heads, head_dim}), 1, 2);
}

Tensor merge_heads(const Tensor& x) {
  AG_CHECK(x.dim() == 4, "merge_heads: input {} must be (B,h,T,d_h)", describe(x));
  const int64_t batch = x.size(0), heads = x.size(1), time = x.size(2), head_dim = x.size(3);
  // [F0.10] [c_1; c_2; ...; c_h]:  (B,h,T,d_h) -> (B,T,h,d_h) -> (B,T,h*d_h)
  return reshape(transpose(x, 1, 2), {batch, time, heads * head_dim});
}

MultiHeadAttention::MultiHeadAttention(int64_t d_model, int64_t heads, bool bias)
    : Module("MultiHeadAttention"), d_model(d_model), heads(heads) {
  AG_CHECK(d_model > 0 && heads > 0 && d_model % heads == 0,
           "MultiHeadAttention: d_model = {} must be a positive multiple of heads = {}", d_model,
           heads);
  head_dim = d_model / heads;
  q_proj = register_module("q_proj", std::make_shared<Linear>(d_model, d_model, bias));
  k_proj = register_module("k_proj", std::make_shared<Linear>(d_model, d_model, bias));
  v_proj = register_module("v_proj", std::make_shared<Linear>(d_model, d_model, bias));
  out_proj = register_module("out_proj", std::make_shared<Linear>(d_model, d_model, bias));
}

AttentionOutput MultiHeadAttention::forward(const Tensor& query, const Tensor& key,
                                            const Tensor& value, const Tensor& mask) {
  auto check_input = [&](const Tensor& t, const char* what) {
    AG_CHECK(t.defined() && t.dim() == 3 && t.size(2) == d_model,
             "MultiHeadAttention: {} {} must be (batch, time, d_model = {})", what, describe(t),
             d_model);
  };
  check_input(query, "query");
  check_input(key, "key");
  check_input(value, "value");
  AG_CHECK(key.size(0) == query.size(0) && value.size(0) == query.size(0) &&
               key.size(1) == value.size(1),
           "MultiHeadAttention: query {}, key {} and value {} must share the batch size, and key "
           "and value the length",
           describe(query), describe(key), describe(value));

  // [F2.2] [F2.6] Q = X W_Q^T + b_Q, K = X W_K^T + b_K, V = X W_V^T + b_V      (B,T,d)
  Tensor q = q_proj->forward(query);
  Tensor k = k_proj->forward(key);
  Tensor v = v_proj->forward(value);
  // [F0.8] [F3.2] each head a subspace of d_h = d/h features     (B,T,d) -> (B,h,T,d_h)
  q = split_heads(q, heads);
  k = split_heads(k, heads);
  v = split_heads(v, heads);
  // A mask for one head's scores (Tq,Tk), (B,1,Tk) or (B,Tq,Tk) gets a heads
  // dim, (B,1,Tq,Tk), so that it broadcasts over the heads and not the batch.
  Tensor head_mask = mask.defined() && mask.dim() == 3 ? unsqueeze(mask, 1) : mask;
  // The mask may block scores, not add to them: it must broadcast to the scores
  // (B,h,Tq,Tk) without enlarging them (a (2,T,T) mask on a batch of 1 would
  // otherwise silently give two copies of the batch).
  const Shape scores_shape = {query.size(0), heads, query.size(1), key.size(1)};
  Shape broadcast;
  AG_CHECK(
      !head_mask.defined() || (head_mask.dim() <= 4 &&
                               try_broadcast_shapes(head_mask.shape(), scores_shape, broadcast) &&
                               broadcast == scores_shape),
      "MultiHeadAttention: mask {} must broadcast to one head's scores (B,Tq,Tk) = ({},{},{}) "
      "or to all of them (B,h,Tq,Tk)",
      describe(mask), query.size(0), query.size(1), key.size(1));
  // [F0.9] [F2.6] c_k = softmax(Q_k K_k^T / sqrt(d_h)) V_k, all heads at once
  //   (B,h,Tq,d_h) x (B,h,Tk,d_h) -> weights (B,h,Tq,Tk), c (B,h,Tq,d_h)
  AttentionOutput heads_out = scaled_dot_product_attention(q, k, v, head_mask);
  // [F0.10] c = W_c [c_1; c_2; ...; c_h] + b_c        (B,h,Tq,d_h) -> (B,Tq,d) -> (B,Tq,d)
  Tensor output = out_proj->forward(merge_heads(heads_out.context));
  return {output, heads_out.weights};
}

std::string MultiHeadAttention::extra_repr() const {
  return fmt::format("d_model={}, heads={}, head_dim={}, bias={}", d_model, heads, head_dim,
                     q_proj->bias.defined());
}

}  // namespace ag::nn
