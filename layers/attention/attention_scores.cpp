// Dot, general and additive scores, and the softmax, context, hard attention
// and local window that go with them.
#include "layers/attention/attention_scores.hpp"

#include <cmath>
#include <limits>

#include "autograd/node.hpp"
#include "autograd/ops.hpp"
#include "core/creation.hpp"
#include "core/error.hpp"
#include "core/fast_math.hpp"
#include "core/kernels.hpp"
#include "core/mode.hpp"
#include "core/simd.hpp"

namespace ag::nn {

namespace {

// A mask for scores (B,S) must be (B,S) or (B,1,S) (what padding_mask makes):
// exactly, so that no shape is read two ways.
void check_scores_mask(const Tensor& mask, int64_t B, int64_t S, const char* op) {
  AG_CHECK(!mask.defined() || mask.shape() == Shape({B, S}) || mask.shape() == Shape({B, 1, S}),
           "{}: mask {} must be (B,S) or (B,1,S) for scores (B,S) = ({},{})", op, describe(mask), B,
           S);
}

// Checks scores (B,S) and their mask for `op`; returns the mask as (B,S)
// (undefined stays undefined).
Tensor check_scores(const Tensor& scores, const Tensor& mask, const char* op) {
  check_defined(scores, op, "scores");
  AG_CHECK(scores.dim() == 2, "{}: scores {} must be (batch, source length)", op, describe(scores));
  if (!mask.defined()) return mask;
  const int64_t B = scores.size(0), S = scores.size(1);
  check_scores_mask(mask, B, S, op);
  return mask.dim() == 3 ? reshape(mask, {B, S}) : mask;
}

// scores (B,S) with the positions a (B,S) mask blocks at -inf (check_scores made the mask).
Tensor blocked_to_minus_infinity(const Tensor& scores, const Tensor& mask) {
  if (!mask.defined()) return scores;
  // [F4.8] blocked scores become -inf, so exp gives them exactly 0 weight
  return masked_fill(scores, mask, -std::numeric_limits<real>::infinity());
}

void check_query_keys(const Tensor& query, const Tensor& keys, int64_t query_size, int64_t key_size,
                      const char* op) {
  check_defined(query, op, "query");
  check_defined(keys, op, "keys");
  AG_CHECK(query.dim() == 2 && keys.dim() == 3 && query.size(0) == keys.size(0),
           "{}: query {} must be (B,Hq) and keys {} (B,S,Hk) with the same B", op, describe(query),
           describe(keys));
  AG_CHECK(query_size < 0 || query.size(1) == query_size,
           "{}: query {} must have query_size = {} features", op, describe(query), query_size);
  AG_CHECK(key_size < 0 || keys.size(2) == key_size, "{}: keys {} must have key_size = {} features",
           op, describe(keys), key_size);
}

// --- fast twins: the additive score and the context in one pass each ------------------
// The loops over raw buffers are compiled per instruction set (AG_SIMD_CLONES).

// [F1.5] hidden_bj = tanh(q_b + k_bj),  score_bj = v . hidden_bj         rows = B*S of A features
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
// dk and dv are added into (add_k, add_v) when they hold the sums gathered so
// far: the keys and v are read at every step of a decoder.
AG_SIMD_CLONES void additive_score_backward(const real* g, const real* v, const real* hidden,
                                            real* dq, real* dk, real* dv, int64_t batch,
                                            int64_t keys, int64_t size, bool add_k,
                                            bool add_v) noexcept {
  if (!add_v)
    for (int64_t a = 0; a < size; ++a) dv[a] = 0;
  for (int64_t b = 0; b < batch; ++b) {
    real* dqb = dq + b * size;
    for (int64_t a = 0; a < size; ++a) dqb[a] = 0;
    for (int64_t j = 0; j < keys; ++j) {
      const int64_t row = b * keys + j;
      const real gr = g[row];
      const real* h = hidden + row * size;
      real* dkr = dk + row * size;
      // The buffers never overlap: ivdep spares GCC run-time overlap checks of
      // five pointers, more than it adds (the loop would stay scalar).
      if (add_k) {
#pragma GCC ivdep
        for (int64_t a = 0; a < size; ++a) {
          const real d = gr * v[a] * (1 - h[a] * h[a]);
          dkr[a] += d;
          dqb[a] += d;
          dv[a] += gr * h[a];
        }
      } else {
#pragma GCC ivdep
        for (int64_t a = 0; a < size; ++a) {
          const real d = gr * v[a] * (1 - h[a] * h[a]);
          dkr[a] = d;
          dqb[a] += d;
          dv[a] += gr * h[a];
        }
      }
    }
  }
}

// [F4.7] c_b = sum_j a_bj v_bj                                rows v_bj of H features
AG_SIMD_CLONES void context_forward(const real* a, const real* v, real* c, int64_t batch,
                                    int64_t keys, int64_t size) noexcept {
  for (int64_t b = 0; b < batch; ++b) {
    real* cb = c + b * size;
    for (int64_t h = 0; h < size; ++h) cb[h] = 0;
    for (int64_t j = 0; j < keys; ++j) {
      const real w = a[b * keys + j];
      const real* vr = v + (b * keys + j) * size;
      for (int64_t h = 0; h < size; ++h) cb[h] += w * vr[h];
    }
  }
}

// dL/da_bj = g_b . v_bj,   dL/dv_bjh = a_bj g_bh   (added into dv when add_v)
AG_SIMD_CLONES void context_backward(const real* g, const real* a, const real* v, real* da,
                                     real* dv, int64_t batch, int64_t keys, int64_t size,
                                     bool add_v) noexcept {
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t j = 0; j < keys; ++j) {
      const int64_t row = b * keys + j;
      const real* gb = g + b * size;
      const real* vr = v + row * size;
      real* dvr = dv + row * size;
      da[row] = kernel::sum_lanes(size, [&](int64_t h) { return gb[h] * vr[h]; });
      const real w = a[row];
      if (add_v)
        for (int64_t h = 0; h < size; ++h) dvr[h] += w * gb[h];
      else
        for (int64_t h = 0; h < size; ++h) dvr[h] = w * gb[h];
    }
}

Tensor additive_score_fast(const Tensor& query, const Tensor& keys, const Tensor& v_weight) {
  const int64_t batch = keys.size(0), count = keys.size(1), size = keys.size(2);
  Tensor hidden = Tensor::empty(keys.shape());
  Tensor score = Tensor::empty({batch, count});
  additive_score_forward(query.data(), keys.data(), v_weight.data(), hidden.data(), score.data(),
                         batch, count, size);
  record("AdditiveScoreBackward", score, {query, keys, v_weight},
         [hidden, v_weight, batch, count, size](const Tensor& g, const Tensor&,
                                                const GradSums& sums) {
           bool add_k = false, add_v = false;
           Tensor dq = Tensor::empty({batch, size});
           Tensor dk = sums.existing_or_new(1, {batch, count, size}, add_k);
           Tensor dv = sums.existing_or_new(2, v_weight.shape(), add_v);
           additive_score_backward(g.data(), v_weight.data(), hidden.data(), dq.data(), dk.data(),
                                   dv.data(), batch, count, size, add_k, add_v);
           return Grads{dq, dk, dv};
         });
  return score;
}

Tensor weighted_context_fast(const Tensor& weights, const Tensor& values) {
  const int64_t batch = values.size(0), count = values.size(1), size = values.size(2);
  Tensor context = Tensor::empty({batch, size});
  context_forward(weights.data(), values.data(), context.data(), batch, count, size);
  record("WeightedContextBackward", context, {weights, values},
         [weights, values, batch, count, size](const Tensor& g, const Tensor&,
                                               const GradSums& sums) {
           bool add_v = false;
           Tensor dw = Tensor::empty(weights.shape());
           Tensor dv = sums.existing_or_new(1, values.shape(), add_v);
           context_backward(g.data(), weights.data(), values.data(), dw.data(), dv.data(), batch,
                            count, size, add_v);
           return Grads{dw, dv};
         });
  return context;
}

}  // namespace

Tensor attention_weights(const Tensor& scores, const Tensor& mask) {
  const Tensor m = check_scores(scores, mask, "attention_weights");
  const Tensor e = blocked_to_minus_infinity(scores, m);
  // [F4.6] a_t(j) = exp(e_t(j)) / sum_k exp(e_t(k))    over the source positions (dim 1)
  return softmax(e, /*dim=*/1);
}

Tensor double_softmax(const Tensor& scores, const Tensor& mask) {
  const Tensor m = check_scores(scores, mask, "double_softmax");
  const Tensor e = blocked_to_minus_infinity(scores, m);
  // [F4.6] the seed's alpha_t(j) = softmax(exp(e_t(j)) / sum_k exp(e_t(k))): the
  // inner softmax's weights, all in [0,1], become the scores of a second one
  const Tensor once = softmax(e, 1);
  return softmax(blocked_to_minus_infinity(once, m), 1);
}

namespace {

// weights (B,S) for values (B,S,H).
void check_weighted_context(const Tensor& weights, const Tensor& values) {
  check_defined(weights, "weighted_context", "weights");
  check_defined(values, "weighted_context", "values");
  AG_CHECK(weights.dim() == 2 && values.dim() == 3 && values.size(0) == weights.size(0) &&
               values.size(1) == weights.size(1),
           "weighted_context: weights {} must be (B,S) and values {} (B,S,H)", describe(weights),
           describe(values));
}

// values (B,S,H) for scores (B,S) and their mask; returns the mask as (B,S).
Tensor check_hard_attention(const Tensor& scores, const Tensor& values, const Tensor& mask) {
  check_defined(values, "hard_attention", "values");
  const Tensor m = check_scores(scores, mask, "hard_attention");
  AG_CHECK(
      values.dim() == 3 && values.size(0) == scores.size(0) && values.size(1) == scores.size(1),
      "hard_attention: scores {} must be (B,S) and values {} (B,S,H)", describe(scores),
      describe(values));
  return m;
}

}  // namespace

Tensor weighted_context(const Tensor& weights, const Tensor& values) {
  check_weighted_context(weights, values);
  // Fast mode: the sum below in one pass, forward and backward (the fast twin above).
  if (!reference_mode()) return weighted_context_fast(weights, values);
  // [F4.7] c_t = sum_j a_t(j) h_j        (B,1,S) x (B,S,H) -> (B,1,H) -> (B,H)
  return squeeze(matmul(unsqueeze(weights, 1), values), 1);
}

AttentionOutput hard_attention(const Tensor& scores, const Tensor& values, const Tensor& mask) {
  const Tensor m = check_hard_attention(scores, values, mask);
  const Tensor e = blocked_to_minus_infinity(scores, m).detach();
  const int64_t B = e.size(0), S = e.size(1);
  Tensor one_hot = zeros({B, S});
  for (int64_t b = 0; b < B; ++b) {
    // [F1.7] hard attention: a_t(j) = 1 at j = argmax_k e_t(k), 0 elsewhere
    int64_t best = -1;
    bool nan = false;
    for (int64_t j = 0; j < S; ++j) {
      const real v = e.data()[b * S + j];
      nan = nan || std::isnan(v);
      if (v != -std::numeric_limits<real>::infinity() && (best < 0 || v > e.data()[b * S + best]))
        best = j;
    }
    if (nan)  // no argmax to trust: the whole row NaN, so the NaN reaches the context
      std::fill(one_hot.data() + b * S, one_hot.data() + (b + 1) * S,
                std::numeric_limits<real>::quiet_NaN());
    else if (best >= 0)
      one_hot.data()[b * S + best] = 1;  // none: every position blocked
  }
  return {weighted_context(one_hot, values), one_hot};
}

Tensor local_window_mask(const std::vector<int64_t>& centers, int64_t half_width, int64_t length) {
  AG_CHECK(half_width >= 0 && length >= 0,
           "local_window_mask: half_width {} and length {} must be >= 0", half_width, length);
  const int64_t B = static_cast<int64_t>(centers.size());
  Tensor mask = zeros({B, 1, length}, "local_window_mask");
  for (int64_t b = 0; b < B; ++b)
    for (int64_t j = 0; j < length; ++j) {
      // |j - p_t| in unsigned arithmetic: j - p_t overflows int64 for a center near its ends
      const uint64_t distance =
          j >= centers[b] ? uint64_t(j) - uint64_t(centers[b]) : uint64_t(centers[b]) - uint64_t(j);
      // [F4.7] a_t = sum over the window of M = 2D+1 states |j - p_t| <= D only
      if (distance > uint64_t(half_width)) mask.data()[b * length + j] = 1;
    }
  return mask;
}

// --- the module's steps ------------------------------------------------------------------

AttentionOutput AttentionScore::forward(const Tensor& query, const Tensor& keys,
                                        const Tensor& mask) {
  check_query_keys(query, keys, -1, -1, type_name().c_str());
  return attend(query, keys, project_keys(keys), mask);
}

AttentionOutput AttentionScore::attend(const Tensor& query, const Tensor& keys,
                                       const Tensor& projected_keys, const Tensor& mask) {
  check_query_keys(query, keys, -1, -1, type_name().c_str());
  check_scores_mask(mask, query.size(0), keys.size(1), type_name().c_str());
  // e_t(j) = score(s_t, h_j)                        (B,Hq), (B,S,A) -> (B,S)
  const Tensor e = score(query, projected_keys);
  // [F4.6] a_t(j) = exp(e_t(j)) / sum_k exp(e_t(k)), blocked positions 0
  const Tensor a = attention_weights(e, mask);
  // [F4.7] c_t = sum_j a_t(j) h_j                   (B,S), (B,S,Hk) -> (B,Hk)
  return {weighted_context(a, keys), a};
}

AttentionOutput AttentionScore::attend_hard(const Tensor& query, const Tensor& keys,
                                            const Tensor& projected_keys, const Tensor& mask) {
  check_query_keys(query, keys, -1, -1, type_name().c_str());
  check_scores_mask(mask, query.size(0), keys.size(1), type_name().c_str());
  // [F1.7] weights from the maximum score: one-hot, no gradient to the score
  return hard_attention(score(query, projected_keys), keys, mask);
}

Tensor DotScore::score(const Tensor& query, const Tensor& keys) {
  check_query_keys(query, keys, -1, query.dim() == 2 ? query.size(1) : -1, "DotScore");
  // [F1.4] e_t(j) = s_t^T h_j                       (B,S,H) x (B,H,1) -> (B,S,1) -> (B,S)
  return squeeze(matmul(keys, unsqueeze(query, 2)), 2);
}

ProjectedScore::ProjectedScore(const std::string& name, int64_t query_size, int64_t key_size,
                               int64_t attention_size)
    : AttentionScore(name),
      query_size(query_size),
      key_size(key_size),
      attention_size(attention_size) {
  query_layer =
      register_module("query_layer", std::make_shared<Linear>(query_size, attention_size, false));
  key_layer =
      register_module("key_layer", std::make_shared<Linear>(key_size, attention_size, false));
}

Tensor ProjectedScore::project_keys(const Tensor& keys) {
  AG_CHECK(keys.dim() == 3 && keys.size(2) == key_size, "{}: keys {} must be (B,S,key_size = {})",
           type_name(), describe(keys), key_size);
  // [F4.4] k_j = W_k h_j, stacked [k_1; ...; k_S]; [F1.5] the W_k h_j inside the tanh
  //   (B,S,Hk) -> (B,S,A)
  return key_layer->forward(keys);
}

std::string ProjectedScore::extra_repr() const {
  return fmt::format("query_size={}, key_size={}, attention_size={}", query_size, key_size,
                     attention_size);
}

GeneralScore::GeneralScore(int64_t query_size, int64_t key_size, int64_t attention_size)
    : ProjectedScore("GeneralScore", query_size, key_size, attention_size) {}

Tensor GeneralScore::score(const Tensor& query, const Tensor& projected_keys) {
  check_query_keys(query, projected_keys, query_size, attention_size, "GeneralScore");
  // [F4.2] q = W_hq s_t                             (B,Hq) -> (B,A); seed 004's second
  // definition [F4.3] q = sum_k W_hk a_k needs the contexts it is used to make: not adopted
  const Tensor q = query_layer->forward(query);
  // [F4.5] e_t(j) = q^T k_j                         (B,S,A) x (B,A,1) -> (B,S)
  return squeeze(matmul(projected_keys, unsqueeze(q, 2)), 2);
}

AdditiveScore::AdditiveScore(int64_t query_size, int64_t key_size, int64_t attention_size)
    : ProjectedScore("AdditiveScore", query_size, key_size, attention_size) {
  weight_layer =
      register_module("weight_layer", std::make_shared<Linear>(attention_size, 1, false));
}

Tensor AdditiveScore::score(const Tensor& query, const Tensor& projected_keys) {
  check_query_keys(query, projected_keys, query_size, attention_size, "AdditiveScore");
  const Tensor q = query_layer->forward(query);  // W_q s_t   (B,Hq) -> (B,A)
  // Fast mode: the two lines below in one pass over (B,S,A), forward and
  // backward, without the (B,S,A) temporaries (the fast twin additive_score_fast).
  if (!reference_mode()) return additive_score_fast(q, projected_keys, weight_layer->weight);
  // [F1.5] e_t(j) = v^T tanh(W_q s_t + W_k h_j)     (B,1,A) + (B,S,A) -> (B,S,A) -> (B,S)
  const Tensor hidden = tanh(unsqueeze(q, 1) + projected_keys);
  return squeeze(weight_layer->forward(hidden), 2);
}

}  // namespace ag::nn
