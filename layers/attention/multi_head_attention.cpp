// Multi-head attention: project, split the features into heads, attend per
// head, concatenate, project. Written plainly, one step a line.
#include "layers/attention/multi_head_attention.hpp"

#include <typeinfo>

#include "autograd/node.hpp"
#include "autograd/ops.hpp"
#include "core/blas.hpp"
#include "core/creation.hpp"
#include "core/error.hpp"
#include "core/mode.hpp"
#include "layers/attention/masked_softmax.hpp"
#include "layers/attention/scaled_dot_product.hpp"
#include "layers/transformer/transformer_masks.hpp"

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

namespace {

void check_inputs(const Tensor& query, const Tensor& key, const Tensor& value, int64_t d_model,
                  const char* op = "MultiHeadAttention") {
  for (auto [t, what] : {std::pair{&query, "query"}, {&key, "key"}, {&value, "value"}})
    AG_CHECK(t->defined() && t->dim() == 3 && t->size(2) == d_model,
             "{}: {} {} must be (batch, time, d_model = {})", op, what, describe(*t), d_model);
  AG_CHECK(key.size(0) == query.size(0) && value.size(0) == query.size(0) &&
               key.size(1) == value.size(1),
           "{}: query {}, key {} and value {} must share the batch size, and key and value the "
           "length",
           op, describe(query), describe(key), describe(value));
}

// The two masks (checked) as one, shaped for all heads' scores (B,h,Tq,Tk):
// (B or 1, h or 1, Tq or 1, Tk); undefined when neither is given.
Tensor heads_mask(const Tensor& attn_mask, const Tensor& key_padding_mask, int64_t batch,
                  int64_t heads, int64_t tq, int64_t tk) {
  check_attention_masks("MultiHeadAttention", "attn_mask", attn_mask, "key_padding_mask",
                        key_padding_mask, batch, heads, tq, tk, "Tq", "Tk");
  Tensor mask;
  // (Tq,Tk) and (B,Tq,Tk) masks are for one head's scores: a heads dim, (B,1,Tq,Tk)
  if (attn_mask.defined()) mask = attn_mask.dim() == 3 ? unsqueeze(attn_mask, 1) : attn_mask;
  if (key_padding_mask.defined()) {
    // [F4.8] a padded key is blocked for every head and every query: (B,1,1,Tk)
    const Tensor padding = reshape(key_padding_mask, {batch, 1, 1, tk});
    mask = mask.defined() ? combine_masks(mask, padding) : padding;
  }
  return mask;
}

// --- the fast twin of the heads: every head read and written in place ----------------
// Head h of the (B,T,d) projections is columns h d_h .. (h+1) d_h - 1 of each row:
// strided GEMMs read and write it there, so no split_heads/merge_heads copies.

// A result every element of which a GEMM writes, unless the GEMM sums over
// nothing (k = 0): then it is all zeros.
Tensor gemm_result(const Shape& shape, int64_t summed) {
  return summed == 0 ? zeros(shape) : Tensor::empty(shape);
}

// Head h of batch b in a (B,T,d) array starts at (b T) d + h d_h; its rows are d apart.
// Its (Tq,Tk) weights in (B,h,Tq,Tk) start at (b h_count + h) Tq Tk.
Tensor multi_head_weights(const Tensor& q, const Tensor& k, int64_t heads, const Tensor& mask) {
  const int64_t batch = q.size(0), tq = q.size(1), tk = k.size(1), d = q.size(2);
  const int64_t dh = d / heads;
  const real sqrt_dh = std::sqrt(static_cast<real>(dh));
  auto head = [d, dh](int64_t b, int64_t h, int64_t time) { return b * time * d + h * dh; };
  auto weights_at = [heads, tq, tk](int64_t b, int64_t h) { return (b * heads + h) * tq * tk; };

  // [F0.9] [F2.6] A_bh = Q_bh K_bh^T     (Tq,d_h) x (d_h,Tk), read in place in q and k
  Tensor weights = Tensor::empty({batch, heads, tq, tk});
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h)
      gemm_strided(false, true, tq, tk, dh, 1, q.data() + head(b, h, tq), d,
                   k.data() + head(b, h, tk), d, 0, weights.data() + weights_at(b, h), tk);
  // [F0.9] W_bh = softmax(mask(A_bh / sqrt(d_h))), in place
  const int64_t rows = batch * heads * tq;
  detail::scaled_masked_softmax_rows(weights.data(), sqrt_dh, detail::mask_rows(mask, weights.shape()),
                             weights.data(), rows, tk);

  // dA = W (G - rowsum(G W)) / sqrt(d_h),  dQ_bh = dA_bh K_bh,  dK_bh = dA_bh^T Q_bh
  const std::vector<Tensor> inputs = detail::with_mask({q, k}, mask);
  record("MultiHeadWeightsBackward", weights, inputs,
         [=, count = inputs.size()](const Tensor& g, const Tensor& w, const GradSums& sums) {
           Tensor da = sums.output_gradient_or_new(g);  // g itself when only the engine holds it
           detail::scaled_softmax_backward_rows(g.data(), w.data(), sqrt_dh, da.data(), rows, tk);
           Tensor dq = gemm_result(q.shape(), tk), dk = gemm_result(k.shape(), tq);
           for (int64_t b = 0; b < batch; ++b)
             for (int64_t h = 0; h < heads; ++h) {
               const real* da_bh = da.data() + weights_at(b, h);
               gemm_strided(false, false, tq, dh, tk, 1, da_bh, tk, k.data() + head(b, h, tk), d, 0,
                            dq.data() + head(b, h, tq), d);
               gemm_strided(true, false, tk, dh, tq, 1, da_bh, tk, q.data() + head(b, h, tq), d, 0,
                            dk.data() + head(b, h, tk), d);
             }
           Grads grads(count);
           grads[0] = dq;
           grads[1] = dk;
           return grads;
         });
  return weights;
}

Tensor multi_head_context(const Tensor& weights, const Tensor& v) {
  const int64_t batch = weights.size(0), heads = weights.size(1), tq = weights.size(2),
                tk = weights.size(3), d = v.size(2);
  const int64_t dh = d / heads;
  auto head = [d, dh](int64_t b, int64_t h, int64_t time) { return b * time * d + h * dh; };
  auto weights_at = [heads, tq, tk](int64_t b, int64_t h) { return (b * heads + h) * tq * tk; };

  // [F0.9] [F0.10] C_bh = W_bh V_bh     (Tq,Tk) x (Tk,d_h), written into head h's columns
  // of C: the heads side by side, [c_1; c_2; ...; c_h], with no merge copy
  Tensor context = gemm_result({batch, tq, d}, tk);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h)
      gemm_strided(false, false, tq, dh, tk, 1, weights.data() + weights_at(b, h), tk,
                   v.data() + head(b, h, tk), d, 0, context.data() + head(b, h, tq), d);

  // dW_bh = G_bh V_bh^T,  dV_bh = W_bh^T G_bh
  record("MultiHeadContextBackward", context, {weights, v}, [=](const Tensor& g, const Tensor&) {
    Tensor dw = Tensor::empty(weights.shape()), dv = gemm_result(v.shape(), tq);
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t h = 0; h < heads; ++h) {
        const real* g_bh = g.data() + head(b, h, tq);
        gemm_strided(false, true, tq, tk, dh, 1, g_bh, d, v.data() + head(b, h, tk), d, 0,
                     dw.data() + weights_at(b, h), tk);
        gemm_strided(true, false, tk, dh, tq, 1, weights.data() + weights_at(b, h), tk, g_bh, d, 0,
                     dv.data() + head(b, h, tk), d);
      }
    return Grads{dw, dv};
  });
  return context;
}

}  // namespace

AttentionOutput MultiHeadAttention::forward(const Tensor& query, const Tensor& key,
                                            const Tensor& value, const Tensor& attn_mask,
                                            const Tensor& key_padding_mask) {
  check_inputs(query, key, value, d_model);
  return project_and_attend(query, key, value, attn_mask, key_padding_mask, Tensor());
}

AttentionOutput MultiHeadAttention::forward_plus_residual(const Tensor& residual,
                                                          const Tensor& query, const Tensor& key,
                                                          const Tensor& value,
                                                          const Tensor& attn_mask,
                                                          const Tensor& key_padding_mask) {
  check_inputs(query, key, value, d_model, "MultiHeadAttention::forward_plus_residual");
  AG_CHECK(residual.defined() && residual.shape() == query.shape(),
           "MultiHeadAttention::forward_plus_residual: residual {} must have the output's "
           "shape, that of query {}",
           describe(residual), describe(query));
  return project_and_attend(query, key, value, attn_mask, key_padding_mask, residual);
}

AttentionOutput MultiHeadAttention::project_and_attend(const Tensor& query, const Tensor& key,
                                                       const Tensor& value, const Tensor& attn_mask,
                                                       const Tensor& key_padding_mask,
                                                       const Tensor& residual) {
  // the weights (B,h,Tq,Tk) must have a shape that fits int64
  check_sizes({query.size(0), heads, query.size(1), key.size(1)}, "MultiHeadAttention");
  const Tensor mask =
      heads_mask(attn_mask, key_padding_mask, query.size(0), heads, query.size(1), key.size(1));
  // [F2.2] [F2.6] Q = X W_Q^T + b_Q, K = X W_K^T + b_K, V = X W_V^T + b_V      (B,T,d)
  Tensor q = q_proj->forward(query);
  Tensor k = k_proj->forward(key);
  Tensor v = v_proj->forward(value);
  return attend_heads(q, k, v, mask, residual);
}

AttentionOutput MultiHeadAttention::attend(const Tensor& q, const Tensor& k, const Tensor& v,
                                           const Tensor& attn_mask,
                                           const Tensor& key_padding_mask) {
  check_inputs(q, k, v, d_model);
  return attend_heads(
      q, k, v, heads_mask(attn_mask, key_padding_mask, q.size(0), heads, q.size(1), k.size(1)));
}

Tensor MultiHeadAttention::project_out(const Tensor& c, const Tensor& residual) {
  if (!residual.defined()) return out_proj->forward(c);
  // residual + c W_c^T + b_c: the product adds to residual + b_c (fast mode),
  // unless out_proj is a subclass with its own forward
  if (typeid(*out_proj) == typeid(Linear))
    return linear_plus_residual(c, out_proj->weight, out_proj->bias, residual);
  return residual + out_proj->forward(c);
}

AttentionOutput MultiHeadAttention::attend_heads(Tensor q, Tensor k, Tensor v, const Tensor& mask,
                                                 const Tensor& residual) {
  if (!reference_mode()) {
    // Fast mode: the four lines below with every head read and written in place
    // in the (B,T,d) projections (the fast twin above): no split or merge copies.
    Tensor weights = multi_head_weights(q, k, heads, mask);
    return {project_out(multi_head_context(weights, v), residual), weights};
  }
  // [F0.8] [F3.2] each head a subspace of d_h = d/h features     (B,T,d) -> (B,h,T,d_h)
  q = split_heads(q, heads);
  k = split_heads(k, heads);
  v = split_heads(v, heads);
  // [F0.9] [F2.6] c_k = softmax(Q_k K_k^T / sqrt(d_h)) V_k, all heads at once
  //   (B,h,Tq,d_h) x (B,h,Tk,d_h) -> weights (B,h,Tq,Tk), c (B,h,Tq,d_h)
  AttentionOutput heads_out = scaled_dot_product_attention(q, k, v, mask);
  // [F0.10] c = W_c [c_1; c_2; ...; c_h] + b_c        (B,h,Tq,d_h) -> (B,Tq,d) -> (B,Tq,d)
  Tensor output = project_out(merge_heads(heads_out.context), residual);
  return {output, heads_out.weights};
}

std::string MultiHeadAttention::extra_repr() const {
  return fmt::format("d_model={}, heads={}, head_dim={}, bias={}", d_model, heads, head_dim,
                     q_proj->bias.defined());
}

}  // namespace ag::nn
