// Scaled dot-product attention, each step of the formula one line, and the
// masks of seed 004's code.
#include "layers/scaled_dot_product.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "autograd/ops.hpp"
#include "core/creation.hpp"
#include "core/error.hpp"
#include "core/kernels.hpp"
#include "core/mode.hpp"
#include "layers/fused_attention.hpp"

namespace ag::nn {

AttentionOutput scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                             const Tensor& mask) {
  AG_CHECK(q.defined() && k.defined() && v.defined(),
           "scaled_dot_product_attention: Q, K and V must all be defined tensors");
  AG_CHECK(q.dim() >= 2 && k.dim() >= 2 && v.dim() >= 2,
           "scaled_dot_product_attention: Q {}, K {} and V {} need at least 2 dims (T, d)",
           describe(q), describe(k), describe(v));
  const int64_t d_k = q.shape().back();
  AG_CHECK(k.shape().back() == d_k,
           "scaled_dot_product_attention: Q {} and K {} must have the same last dim d_k",
           describe(q), describe(k));
  AG_CHECK(k.shape()[k.dim() - 2] == v.shape()[v.dim() - 2],
           "scaled_dot_product_attention: K {} and V {} must have the same number of keys (dim -2)",
           describe(k), describe(v));

  // [F1.3] step 1, [F2.3] A_ij = q_i . k_j / sqrt(d_k)      (..., Tq, d_k) x (..., d_k, Tk)
  // [F1.6] 1/sqrt(d_k) keeps var(A_ij) near 1 (d_k unscaled): softmax does not saturate
  Tensor scores = matmul(q, transpose(k, -2, -1));
  const real sqrt_d_k = std::sqrt(static_cast<real>(d_k));
  Tensor weights;
  const Shape one_mask = {q.shape()[q.dim() - 2], k.shape()[k.dim() - 2]};
  if (!reference_mode() && (!mask.defined() || mask.shape() == one_mask)) {
    // Fast mode: the three steps of the other branch (scale, mask, softmax)
    // in one pass over the scores and one backward (layers/fused_attention.cpp;
    // tests compare the two).
    weights = scaled_masked_softmax(scores, sqrt_d_k, mask);
  } else {
    scores = scores / sqrt_d_k;
    // [F4.8] masked scores become -inf, so exp gives exactly 0 weight
    scores = masked_fill(scores, mask, -std::numeric_limits<real>::infinity());
    // [F1.3] step 2, [F2.4] H_i = softmax(A_i)                over the keys (last dim)
    weights = softmax(scores, -1);
  }
  // [F1.1] [F2.1] [F3.4] Attention(Q,K,V) = softmax(QK^T / sqrt(d_k)) V; [F1.3] step 3,
  // [F2.5] O_i = sum_j H_ij V_j                               (..., Tq, Tk) x (..., Tk, d_v)
  Tensor output = matmul(weights, v);
  return {output, weights};
}

Tensor causal_mask(int64_t length) {
  AG_CHECK(length >= 0, "causal_mask: length must be >= 0, got {}", length);
  // [F4.8] seed: mask = 1 - band_part(ones((L, L)), -1, 0), the strict upper
  // triangle: 1 (blocked) where key j comes after query i.
  Tensor mask = zeros({length, length});
  for (int64_t i = 0; i < length; ++i)
    for (int64_t j = i + 1; j < length; ++j) mask.data()[i * length + j] = 1;
  return mask;
}

Tensor padding_mask(const std::vector<int64_t>& lengths, int64_t length) {
  const int64_t batch = static_cast<int64_t>(lengths.size());
  Tensor mask = zeros({batch, 1, length});
  for (int64_t b = 0; b < batch; ++b) {
    AG_CHECK(lengths[b] >= 0 && lengths[b] <= length,
             "padding_mask: length {} of sequence {} is outside 0..{}", lengths[b], b, length);
    // [F4.8] positions past the sequence's end are padding: blocked
    for (int64_t t = lengths[b]; t < length; ++t) mask.data()[b * length + t] = 1;
  }
  return mask;
}

Tensor padding_mask(const Tensor& tokens, int64_t pad_id) {
  AG_CHECK(tokens.dim() == 2, "padding_mask: tokens {} must be (batch, time)", describe(tokens));
  // [F4.8] seed: padding_mask = cast(equal(targets, 0)): 1 where the token is padding
  Tensor mask = kernel::map(tokens, [pad_id](real t) { return real(t == real(pad_id)); });
  return kernel::reshape(mask, {tokens.size(0), 1, tokens.size(1)});
}

Tensor combine_masks(const Tensor& a, const Tensor& b) {
  // [F4.8] seed: combined_mask = maximum(padding_mask, lookahead_mask):
  // blocked where either blocks
  return kernel::zip(a, b, "combine_masks", [](real x, real y) { return std::max(x, y); });
}

}  // namespace ag::nn
