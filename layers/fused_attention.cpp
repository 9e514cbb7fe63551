// Fused attention steps (see fused_attention.hpp). The loops over raw buffers
// are compiled per instruction set (AG_SIMD_CLONES); checks and allocations
// stay outside them.
#include "layers/fused_attention.hpp"

#include <cmath>
#include <limits>
#include <vector>

#include "autograd/node.hpp"
#include "core/blas.hpp"
#include "core/error.hpp"
#include "core/fast_math.hpp"
#include "core/kernels.hpp"
#include "core/simd.hpp"

namespace ag::nn {

namespace {

// hidden_bj = tanh(q_b + k_bj),  score_bj = v . hidden_bj         rows = B*S of A features
AG_SIMD_CLONES void additive_score_forward(const real* q, const real* k, const real* v,
                                           real* hidden, real* score, int64_t batch, int64_t keys,
                                           int64_t size) noexcept {
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t j = 0; j < keys; ++j) {
      const int64_t row = b * keys + j;
      const real* qb = q + b * size;
      const real* kr = k + row * size;
      real* h = hidden + row * size;
      for (int64_t a = 0; a < size; ++a) h[a] = fast::tanh(qb[a] + kr[a]);
      score[row] = kernel::sum_lanes(size, [&](int64_t a) { return v[a] * h[a]; });
    }
}

// With g_bj = dL/dscore_bj and d_bja = g_bj v_a (1 - hidden_bja^2):
//   dL/dk_bja = d_bja,   dL/dq_ba = sum_j d_bja,   dL/dv_a = sum_bj g_bj hidden_bja
AG_SIMD_CLONES void additive_score_backward(const real* g, const real* v, const real* hidden,
                                            real* dq, real* dk, real* dv, int64_t batch,
                                            int64_t keys, int64_t size) noexcept {
  for (int64_t a = 0; a < size; ++a) dv[a] = 0;
  for (int64_t b = 0; b < batch; ++b) {
    real* dqb = dq + b * size;
    for (int64_t a = 0; a < size; ++a) dqb[a] = 0;
    for (int64_t j = 0; j < keys; ++j) {
      const int64_t row = b * keys + j;
      const real gr = g[row];
      const real* h = hidden + row * size;
      real* dkr = dk + row * size;
      for (int64_t a = 0; a < size; ++a) {
        const real d = gr * v[a] * (1 - h[a] * h[a]);
        dkr[a] = d;
        dqb[a] += d;
        dv[a] += gr * h[a];
      }
    }
  }
}

// c_b = sum_j alpha_bj v_bj                                  rows v_bj of H features
AG_SIMD_CLONES void context_forward(const real* alpha, const real* v, real* c, int64_t batch,
                                    int64_t keys, int64_t size) noexcept {
  for (int64_t b = 0; b < batch; ++b) {
    real* cb = c + b * size;
    for (int64_t h = 0; h < size; ++h) cb[h] = 0;
    for (int64_t j = 0; j < keys; ++j) {
      const real a = alpha[b * keys + j];
      const real* vr = v + (b * keys + j) * size;
      for (int64_t h = 0; h < size; ++h) cb[h] += a * vr[h];
    }
  }
}

// dL/dalpha_bj = g_b . v_bj,   dL/dv_bjh = alpha_bj g_bh
AG_SIMD_CLONES void context_backward(const real* g, const real* alpha, const real* v, real* dalpha,
                                     real* dv, int64_t batch, int64_t keys, int64_t size) noexcept {
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t j = 0; j < keys; ++j) {
      const int64_t row = b * keys + j;
      const real* gb = g + b * size;
      const real* vr = v + row * size;
      real* dvr = dv + row * size;
      dalpha[row] = kernel::sum_lanes(size, [&](int64_t h) { return gb[h] * vr[h]; });
      const real a = alpha[row];
      for (int64_t h = 0; h < size; ++h) dvr[h] = a * gb[h];
    }
}

// z = mask ? -inf : x / divisor (a division, as the composed x / sqrt(d_k), so that both
// give the same floats), then each row of z softmaxed in place (max subtracted;
// a row blocked everywhere gets zeros, as softmax gives it). The mask is one
// (Tq, Tk) matrix shared by every batch and head: row r uses mask row r % Tq.
AG_SIMD_CLONES void scaled_masked_softmax_forward(const real* x, const real* mask, real divisor,
                                                  real* y, int64_t rows, int64_t size,
                                                  int64_t mask_rows) noexcept {
  const real minus_inf = -std::numeric_limits<real>::infinity();
  for (int64_t r = 0; r < rows; ++r) {
    const real* xr = x + r * size;
    real* yr = y + r * size;
    if (mask != nullptr) {
      const real* m = mask + (r % mask_rows) * size;
      for (int64_t k = 0; k < size; ++k) yr[k] = m[k] != 0 ? minus_inf : xr[k] / divisor;
    } else {
      for (int64_t k = 0; k < size; ++k) yr[k] = xr[k] / divisor;
    }
    real max = minus_inf;
    for (int64_t k = 0; k < size; ++k) max = yr[k] > max ? yr[k] : max;
    if (max == minus_inf) max = 0;
    for (int64_t k = 0; k < size; ++k) yr[k] = fast::exp(yr[k] - max);
    const real sum = kernel::sum_lanes(size, [&](int64_t k) { return yr[k]; });
    const real inv = sum > 0 ? 1 / sum : 0;
    for (int64_t k = 0; k < size; ++k) yr[k] *= inv;
  }
}

// dL/dx_k = y_k (g_k - sum_i g_i y_i) / divisor: softmax's backward and the scale's in one pass
// (blocked positions have y = 0, so no gradient).
AG_SIMD_CLONES void scaled_softmax_backward(const real* g, const real* y, real divisor, real* dx,
                                            int64_t rows, int64_t size) noexcept {
  for (int64_t r = 0; r < rows; ++r) {
    const real* gr = g + r * size;
    const real* yr = y + r * size;
    real* d = dx + r * size;
    const real dot = kernel::sum_lanes(size, [&](int64_t k) { return gr[k] * yr[k]; });
    for (int64_t k = 0; k < size; ++k) d[k] = yr[k] * (gr[k] - dot) / divisor;
  }
}

}  // namespace

Tensor additive_score_fused(const Tensor& query, const Tensor& keys, const Tensor& v_weight) {
  AG_CHECK(query.defined() && keys.defined() && v_weight.defined(),
           "additive_score_fused: query, keys and v_weight must all be defined tensors");
  AG_CHECK(query.dim() == 2 && keys.dim() == 3 && keys.size(0) == query.size(0) &&
               keys.size(2) == query.size(1),
           "additive_score_fused: query {} must be (B,A) and keys {} (B,S,A)", describe(query),
           describe(keys));
  const int64_t batch = keys.size(0), count = keys.size(1), size = keys.size(2);
  AG_CHECK(v_weight.shape() == Shape({1, size}),
           "additive_score_fused: v_weight {} must be (1, A = {})", describe(v_weight), size);
  Tensor hidden = Tensor::empty(keys.shape());
  Tensor score = Tensor::empty({batch, count, 1});
  additive_score_forward(query.data(), keys.data(), v_weight.data(), hidden.data(), score.data(),
                         batch, count, size);
  record("AdditiveScoreBackward", score, {query, keys, v_weight},
         [hidden, v_weight, batch, count, size](const Tensor& g, const Tensor&) {
           Tensor dq = Tensor::empty({batch, size});
           Tensor dk = Tensor::empty({batch, count, size});
           Tensor dv = Tensor::empty({1, size});
           additive_score_backward(g.data(), v_weight.data(), hidden.data(), dq.data(), dk.data(),
                                   dv.data(), batch, count, size);
           return Grads{dq, dk, dv};
         });
  return score;
}

Tensor attention_context_fused(const Tensor& alpha, const Tensor& values) {
  AG_CHECK(alpha.defined() && values.defined(),
           "attention_context_fused: alpha and values must both be defined tensors");
  AG_CHECK(values.dim() == 3 && alpha.shape() == Shape({values.size(0), values.size(1), 1}),
           "attention_context_fused: alpha {} must be (B,S,1) for values {} (B,S,H)",
           describe(alpha), describe(values));
  const int64_t batch = values.size(0), count = values.size(1), size = values.size(2);
  Tensor context = Tensor::empty({batch, size});
  context_forward(alpha.data(), values.data(), context.data(), batch, count, size);
  record("AttentionContextBackward", context, {alpha, values},
         [alpha, values, batch, count, size](const Tensor& g, const Tensor&) {
           Tensor dalpha = Tensor::empty(alpha.shape()), dv = Tensor::empty(values.shape());
           context_backward(g.data(), alpha.data(), values.data(), dalpha.data(), dv.data(), batch,
                            count, size);
           return Grads{dalpha, dv};
         });
  return context;
}

Tensor scaled_masked_softmax(const Tensor& scores, real divisor, const Tensor& mask) {
  AG_CHECK(scores.defined() && scores.dim() >= 2,
           "scaled_masked_softmax: scores {} need at least 2 dims (Tq, Tk)", describe(scores));
  const int64_t size = scores.shape().back(), query_rows = scores.shape()[scores.dim() - 2];
  AG_CHECK(!mask.defined() || mask.shape() == Shape({query_rows, size}),
           "scaled_masked_softmax: mask {} must be (Tq, Tk) = ({}, {}) for scores {}",
           describe(mask), query_rows, size, describe(scores));
  Tensor y = Tensor::empty(scores.shape());
  const int64_t rows = size == 0 ? 0 : scores.numel() / size;
  scaled_masked_softmax_forward(scores.data(), mask.defined() ? mask.data() : nullptr, divisor,
                                y.data(), rows, size, query_rows);
  // The mask is recorded as an input (it gets no gradient), as masked_fill does, so
  // that backward notices if it is changed in place afterwards.
  std::vector<Tensor> inputs{scores};
  if (mask.defined()) inputs.push_back(mask);
  record("ScaledMaskedSoftmaxBackward", y, inputs,
         [divisor, rows, size, count = inputs.size()](const Tensor& g, const Tensor& y) {
           Grads grads(count);
           grads[0] = Tensor::empty(y.shape());
           scaled_softmax_backward(g.data(), y.data(), divisor, grads[0].data(), rows, size);
           return grads;
         });
  return y;
}

Tensor multi_head_attention_fused(const Tensor& q, const Tensor& k, const Tensor& v, int64_t heads,
                                  const Tensor& mask) {
  AG_CHECK(q.defined() && k.defined() && v.defined(),
           "multi_head_attention_fused: Q, K and V must all be defined tensors");
  AG_CHECK(q.dim() == 3 && k.dim() == 3 && v.shape() == k.shape() && k.size(0) == q.size(0) &&
               k.size(2) == q.size(2),
           "multi_head_attention_fused: Q {} must be (B,Tq,d) and K {}, V {} (B,Tk,d)", describe(q),
           describe(k), describe(v));
  const int64_t batch = q.size(0), tq = q.size(1), tk = k.size(1), d = q.size(2);
  AG_CHECK(heads > 0 && d % heads == 0,
           "multi_head_attention_fused: d = {} must be a positive multiple of heads = {}", d,
           heads);
  AG_CHECK(!mask.defined() || mask.shape() == Shape({tq, tk}),
           "multi_head_attention_fused: mask {} must be (Tq, Tk) = ({}, {})", describe(mask), tq,
           tk);
  const int64_t dh = d / heads;
  const real sqrt_dh = std::sqrt(static_cast<real>(dh));
  // Offsets of head h of batch b in a (B,T,d) array, and of its (Tq,Tk) weights.
  auto at = [d, dh](int64_t b, int64_t h, int64_t time) { return (b * time) * d + h * dh; };
  auto weights_at = [heads, tq, tk](int64_t b, int64_t h) { return (b * heads + h) * tq * tk; };

  // A_bh = Q_bh K_bh^T,  W_bh = softmax(A_bh / sqrt(d_h), masked),  C_bh = W_bh V_bh
  Tensor weights = Tensor::empty({batch, heads, tq, tk});
  Tensor context = Tensor::empty({batch, tq, d});
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h)
      gemm_strided(false, true, tq, tk, dh, 1, q.data() + at(b, h, tq), d, k.data() + at(b, h, tk),
                   d, 0, weights.data() + weights_at(b, h), tk);
  const int64_t rows = batch * heads * tq;
  if (tk > 0)
    scaled_masked_softmax_forward(weights.data(), mask.defined() ? mask.data() : nullptr, sqrt_dh,
                                  weights.data(), rows, tk, tq);
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h)
      gemm_strided(false, false, tq, dh, tk, 1, weights.data() + weights_at(b, h), tk,
                   v.data() + at(b, h, tk), d, 0, context.data() + at(b, h, tq), d);

  // dW = G V^T,  dV = W^T G,  dA = W (dW - rowsum(dW W)) / sqrt(d_h),  dQ = dA K,  dK = dA^T Q
  std::vector<Tensor> inputs{q, k, v};
  if (mask.defined()) inputs.push_back(mask);
  record("MultiHeadAttentionBackward", context, inputs,
         [=, count = inputs.size()](const Tensor& g, const Tensor&) {
           Grads grads(count);
           Tensor dq = Tensor::empty(q.shape()), dk = Tensor::empty(k.shape()),
                  dv = Tensor::empty(v.shape()), dw = Tensor::empty(weights.shape());
           for (int64_t b = 0; b < batch; ++b)
             for (int64_t h = 0; h < heads; ++h) {
               const real* gbh = g.data() + at(b, h, tq);
               const real* wbh = weights.data() + weights_at(b, h);
               gemm_strided(false, true, tq, tk, dh, 1, gbh, d, v.data() + at(b, h, tk), d, 0,
                            dw.data() + weights_at(b, h), tk);
               gemm_strided(true, false, tk, dh, tq, 1, wbh, tk, gbh, d, 0,
                            dv.data() + at(b, h, tk), d);
             }
           scaled_softmax_backward(dw.data(), weights.data(), sqrt_dh, dw.data(), rows, tk);
           for (int64_t b = 0; b < batch; ++b)
             for (int64_t h = 0; h < heads; ++h) {
               const real* da = dw.data() + weights_at(b, h);
               gemm_strided(false, false, tq, dh, tk, 1, da, tk, k.data() + at(b, h, tk), d, 0,
                            dq.data() + at(b, h, tq), d);
               gemm_strided(true, false, tk, dh, tq, 1, da, tk, q.data() + at(b, h, tq), d, 0,
                            dk.data() + at(b, h, tk), d);
             }
           grads[0] = dq;
           grads[1] = dk;
           grads[2] = dv;
           return grads;
         });
  return context;
}

}  // namespace ag::nn
