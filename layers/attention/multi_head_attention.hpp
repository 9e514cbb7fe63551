// Multi-head attention, as in Vaswani et al. (2017) and seeds 000 (section
// 3.3), 002 (sections 2.2, 3.2) and 003 (section 3.2): h heads, each a scaled
// dot-product attention in its own subspace of d_model / h features, their
// outputs concatenated and projected.
//
//   query (B,Tq,d)  key, value (B,Tk,d)          d = d_model, h = heads, d_h = d / h
//   [F2.2] Q = X_q W_Q^T + b_Q, K = X_k W_K^T + b_K, V = X_v W_V^T + b_V    (B,T,d)
//   [F0.8] split the FEATURES into h heads:      (B,T,d) -> (B,h,T,d_h)
//   [F0.9] per head c_k = softmax(Q_k K_k^T / sqrt(d_h)) V_k                (B,h,Tq,d_h)
//   [F0.10] c = W_c [c_1; ...; c_h] + b_c        concat (B,Tq,d), out_proj  (B,Tq,d)
//
// Seed 000 splits the TIME STEPS into subsets, one per head [F0.8]; that is
// not the standard multi-head attention (every head of Vaswani et al. sees
// every position), see docs/errata.md. The four projections are separate
// Linear(d, d) layers named q_proj, k_proj, v_proj and out_proj (the names of
// Hugging Face's attention modules; PyTorch's nn.MultiheadAttention stores
// the first three stacked in one in_proj_weight (3d, d) and in_proj_bias
// (3d): rows 0..d-1 are q_proj's, d..2d-1 k_proj's, 2d..3d-1 v_proj's).
// Each is initialised as a Linear, weights and biases ~ U(-1/sqrt(d),
// 1/sqrt(d)); PyTorch draws in_proj_weight with xavier_uniform_ and sets the
// biases to 0, so the same seed gives different numbers there.
//
// k_proj's bias does not change the output: it adds q_i . b_k / sqrt(d_h) to
// every score of query i alike, and softmax ignores a shift of its row. Its
// gradient is exactly 0 (kept for PyTorch's parameter layout).
#pragma once

#include "layers/attention/attention_output.hpp"
#include "layers/basic/linear.hpp"
#include "layers/framework/module.hpp"

namespace ag::nn {

// (B,T,d) -> (B,h,T,d/h): head k holds features k*d/h .. (k+1)*d/h - 1.
Tensor split_heads(const Tensor& x, int64_t heads);
// (B,h,T,d_h) -> (B,T,h*d_h): the heads side by side again, [c_1; c_2; ...; c_h].
Tensor merge_heads(const Tensor& x);

class MultiHeadAttention : public Module {
 public:
  // d_model must be a multiple of heads.
  MultiHeadAttention(int64_t d_model, int64_t heads, bool bias = true);

  // Returns {output (B,Tq,d), weights (B,h,Tq,Tk)}, one weight matrix per head.
  // Two masks (1 = blocked), as PyTorch's nn.MultiheadAttention takes them:
  //   attn_mask         which keys each query may see, for the scores of one head:
  //                     (Tq,Tk) shared by the batch (causal_mask(T)), (B,Tq,Tk) or
  //                     (B,1,Tk) per sequence, or (B or 1, h or 1, Tq, Tk) per head;
  //   key_padding_mask  which keys are padding, per sequence: (B,Tk) (PyTorch's
  //                     key_padding_mask), or (B,1,Tk) as padding_mask() makes it.
  // A 2-D attn_mask is always (Tq,Tk); padding goes in key_padding_mask, so no
  // mask shape can be read two ways (a (B,Tk) padding mask given as attn_mask
  // is refused, unless B == Tq: then it is taken as (Tq,Tk), as the name says).
  AttentionOutput forward(const Tensor& query, const Tensor& key, const Tensor& value,
                          const Tensor& attn_mask = Tensor(),
                          const Tensor& key_padding_mask = Tensor());
  // forward's output added to residual (B,Tq,d): {residual + output,
  // weights}, a Transformer layer's x + SelfAttn(x). In fast mode the output
  // projection writes the sum itself (linear_plus_residual).
  AttentionOutput forward_plus_residual(const Tensor& residual, const Tensor& query,
                                        const Tensor& key, const Tensor& value,
                                        const Tensor& attn_mask = Tensor(),
                                        const Tensor& key_padding_mask = Tensor());
  // Self-attention: queries, keys and values all from x (B,T,d). With a key
  // padding mask too, call forward(x, x, x, attn_mask, key_padding_mask).
  AttentionOutput forward(const Tensor& x, const Tensor& attn_mask = Tensor()) {
    return forward(x, x, x, attn_mask);
  }
  // What forward does after its three projections, for queries, keys and values
  // that are projected already: q (B,Tq,d), k and v (B,Tk,d), masks as forward's.
  // A KV cache (layers/transformer/kv_cache.hpp) keeps the projected keys and values of the
  // positions it has seen and calls this with them.
  AttentionOutput attend(const Tensor& q, const Tensor& k, const Tensor& v,
                         const Tensor& attn_mask = Tensor(),
                         const Tensor& key_padding_mask = Tensor());
  std::string extra_repr() const override;

  int64_t d_model, heads, head_dim;
  std::shared_ptr<Linear> q_proj, k_proj, v_proj, out_proj;  // each Linear(d, d)

 private:
  // forward, and forward_plus_residual with a residual, on checked inputs.
  AttentionOutput project_and_attend(const Tensor& query, const Tensor& key, const Tensor& value,
                                     const Tensor& attn_mask, const Tensor& key_padding_mask,
                                     const Tensor& residual);
  // The heads of forward and attend, on checked inputs and one mask for all
  // heads; the output added to residual when it is defined.
  AttentionOutput attend_heads(Tensor q, Tensor k, Tensor v, const Tensor& mask,
                               const Tensor& residual = Tensor());
  // out_proj(c), added to residual when it is defined.
  Tensor project_out(const Tensor& c, const Tensor& residual);
};

}  // namespace ag::nn
