// Fused forms of two attention steps, for speed: each is one op with its own
// backward instead of a chain of element-wise ops, each with its temporaries.
// The composed forms stay the reference (AdditiveScore::score,
// scaled_dot_product_attention); tests/test_fast_paths.cpp compares them.
#pragma once

#include "core/tensor.hpp"

namespace ag::nn {

// Bahdanau's score for every key at once, the formula F1.5 in one pass:
//   score_bj = sum_a v_a tanh(q_ba + k_bja)
//   query (B,A) (W_q s), keys (B,S,A) (W_k h_j), v_weight (1,A) -> (B,S,1)
// The same as v->forward(tanh(unsqueeze(query, 1) + keys)) with v = Linear(A,1,false).
Tensor additive_score_fused(const Tensor& query, const Tensor& keys, const Tensor& v_weight);

// The context of every query at once, sum(alpha * values, 1) in one pass:
//   c_bh = sum_j alpha_bj v_bjh      alpha (B,S,1), values (B,S,H) -> (B,H)
Tensor attention_context_fused(const Tensor& alpha, const Tensor& values);

// softmax over the last dim of scores / divisor, with blocked positions (mask != 0)
// set to -inf first:  scores (..., Tq, Tk), mask undefined or (Tq, Tk) -> (..., Tq, Tk).
// The same as softmax(masked_fill(scores / divisor, mask, -inf), -1), divisor = sqrt(d_k).
Tensor scaled_masked_softmax(const Tensor& scores, real divisor, const Tensor& mask);

// Multi-head scaled dot-product attention on (B,T,d) projections, every head at once,
// without splitting or merging the heads by copies: head h is columns h d_h .. (h+1) d_h
// of each row, read and written in place by strided GEMMs.
//   q (B,Tq,d), k and v (B,Tk,d), mask undefined or (Tq,Tk) -> context (B,Tq,d), the same as
//   merge_heads(scaled_dot_product_attention(split_heads(q), split_heads(k), split_heads(v),
//                                            mask).context)
// The attention weights stay inside the op (they are not differentiable outputs here).
Tensor multi_head_attention_fused(const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads,
                                  const Tensor& mask);

}  // namespace ag::nn
