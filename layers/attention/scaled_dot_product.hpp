// Scaled dot-product attention and the masks that go with it.
//
// One function serves three seeds' formulas: [F1.1] (seed 001), [F2.1] (seed
// 002) and [F3.4] (seed 003) all write Attention(Q,K,V) = softmax(QK^T/sqrt(d_k)) V.
// Queries ask, keys answer, values are what is passed on: Q comes from the
// side that attends (the decoder, or the sequence itself in self-attention),
// K and V from the side attended to. (Seed 001's text swaps these roles; see
// docs/formulas.md.)
//
//   Q (..., Tq, d_k)   K (..., Tk, d_k)   V (..., Tk, d_v)
//   scores  = Q K^T / sqrt(d_k)          (..., Tq, Tk)   one row per query
//   weights = softmax(scores) over Tk     (..., Tq, Tk)   each row sums to 1
//   output  = weights V                   (..., Tq, d_v)
#pragma once

#include <vector>

#include "layers/attention/attention_output.hpp"

namespace ag::nn {

// A mask is a tensor of 0s and 1s where 1 (true) means BLOCKED: the query may
// not look at that key. It broadcasts against the scores (..., Tq, Tk), e.g.
// a causal mask (Tq, Tk) or a padding mask (B, 1, Tk). Broadcasting aligns
// shapes at the right, so every shape has one reading: a 2-D mask is always
// (Tq, Tk), shared by the whole batch; a padding mask per sequence needs its
// query dim, (B, 1, Tk), as padding_mask makes it (a (B, Tk) mask is refused,
// unless B == Tq, when it is the (Tq, Tk) it looks like: for padding use
// MultiHeadAttention's separate key_padding_mask, or (B, 1, Tk)). A mask that
// would enlarge the scores is refused. Blocked positions get
// weight exactly 0. A query whose every key is blocked gets all-zero weights
// and a zero output (softmax over a row of -inf is defined as zeros), never NaN.
//
// Returns {output (..., Tq, d_v), weights (..., Tq, Tk)} as AttentionOutput
// (context = output).
AttentionOutput scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                             const Tensor& mask = Tensor());

// --- masks [F4.8] (1 = blocked) -------------------------------------------------------

// (T,T): query i may look at keys 0..i only, so a decoder cannot read ahead.
Tensor causal_mask(int64_t length);
// (B,1,T): key t of sequence b is blocked when t >= lengths[b] (padding).
// For scores with a heads dim (B,H,Tq,Tk) use unsqueeze(mask, 1): (B,1,1,T).
Tensor padding_mask(const std::vector<int64_t>& lengths, int64_t length);
// (B,1,T): blocked where tokens (B,T) hold pad_id.
Tensor padding_mask(const Tensor& tokens, int64_t pad_id = 0);
// Blocked where either mask blocks (elementwise max, with broadcasting).
Tensor combine_masks(const Tensor& a, const Tensor& b);

}  // namespace ag::nn
