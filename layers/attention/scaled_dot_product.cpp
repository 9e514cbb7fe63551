// Scaled dot-product attention, each step of the formula one line, and the
// masks of seed 004's code.
#include "layers/attention/scaled_dot_product.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "autograd/node.hpp"
#include "autograd/ops.hpp"
#include "core/creation.hpp"
#include "core/error.hpp"
#include "core/fast_math.hpp"
#include "core/kernels.hpp"
#include "core/mode.hpp"
#include "core/simd.hpp"
#include "core/softmax_row.hpp"
#include "layers/attention/masked_softmax.hpp"

namespace ag::nn {

namespace {

// Q, K, V (and the mask) fit together, or an error names what does not.
void check_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& mask) {
  constexpr const char* op = "scaled_dot_product_attention";
  AG_CHECK(q.defined() && k.defined() && v.defined(),
           "{}: Q, K and V must all be defined tensors (undefined:{}{}{})", op,
           q.defined() ? "" : " Q", k.defined() ? "" : " K", v.defined() ? "" : " V");
  AG_CHECK(q.dim() >= 2 && k.dim() >= 2 && v.dim() >= 2,
           "{}: Q {}, K {} and V {} need at least 2 dims (T, d)", op, describe(q), describe(k),
           describe(v));
  const int64_t d_k = q.shape().back();
  AG_CHECK(d_k > 0, "{}: Q {} has d_k = 0 features: every score would be 0 / sqrt(0)", op,
           describe(q));
  AG_CHECK(k.shape().back() == d_k, "{}: Q {} and K {} must have the same last dim d_k", op,
           describe(q), describe(k));
  AG_CHECK(k.shape()[k.dim() - 2] == v.shape()[v.dim() - 2],
           "{}: K {} and V {} must have the same number of keys (dim -2)", op, describe(k),
           describe(v));
  // The batch dims (all but the last two) broadcast as matmul's do.
  const Shape q_batch(q.shape().begin(), q.shape().end() - 2);
  const Shape k_batch(k.shape().begin(), k.shape().end() - 2);
  const Shape v_batch(v.shape().begin(), v.shape().end() - 2);
  Shape batch, output_batch;
  AG_CHECK(try_broadcast_shapes(q_batch, k_batch, batch) &&
               try_broadcast_shapes(batch, v_batch, output_batch),
           "{}: the batch dims of Q {}, K {} and V {} (all but the last two) do not broadcast", op,
           describe(q), describe(k), describe(v));
  // The scores (..., Tq, Tk) and the output (..., Tq, d_v) must have shapes that fit int64.
  Shape scores = batch, output = output_batch, masked;
  scores.push_back(q.shape()[q.dim() - 2]);
  scores.push_back(k.shape()[k.dim() - 2]);
  output.push_back(q.shape()[q.dim() - 2]);
  output.push_back(v.shape().back());
  check_sizes(scores, op);
  check_sizes(output, op);
  if (!mask.defined()) return;
  // The mask blocks scores; it may not add to them: broadcasting it must give
  // the scores' own shape (a (2,T,T) mask on a batch of 1 would otherwise
  // silently make two copies of the batch).
  AG_CHECK(mask.dim() <= static_cast<int64_t>(scores.size()) &&
               try_broadcast_shapes(mask.shape(), scores, masked) && masked == scores,
           "{}: mask {} must broadcast to the scores (..., Tq, Tk) = {} of Q {} and K {}", op,
           describe(mask), shape_str(scores), describe(q), describe(k));
}

}  // namespace

AttentionOutput scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                             const Tensor& mask) {
  check_attention(q, k, v, mask);
  const real sqrt_d_k = std::sqrt(static_cast<real>(q.shape().back()));
  // [F1.3] [F2.3] step 1: A_ij = q_i . k_j / sqrt(d_k)      (..., Tq, d_k) x (..., d_k, Tk)
  // [F1.6] 1/sqrt(d_k) keeps var(A_ij) near 1 (d_k unscaled): softmax does not saturate
  Tensor scores = matmul(q, transpose(k, -2, -1));
  Tensor weights;
  if (reference_mode()) {
    scores = scores / sqrt_d_k;
    // [F4.8] masked scores become -inf, so exp gives exactly 0 weight
    if (mask.defined()) scores = masked_fill(scores, mask, -std::numeric_limits<real>::infinity());
    // [F1.3] [F2.4] step 2: H_i = softmax(A_i)                over the keys (last dim)
    weights = softmax(scores, -1);
  } else {
    // Fast mode: the three lines above in one pass over the scores, and one
    // backward (the fast twin below).
    weights = detail::scaled_masked_softmax(scores, sqrt_d_k, mask);
  }
  // [F1.1] [F2.1] [F3.4] [F1.3] [F2.5] Attention(Q,K,V) = softmax(QK^T / sqrt(d_k)) V,
  // step 3: O_i = sum_j H_ij V_j                               (..., Tq, Tk) x (..., Tk, d_v)
  Tensor output = matmul(weights, v);
  return {output, weights};
}

// --- the fast twin of the scale, mask and softmax lines above --------------------------
// The loops over raw buffers are compiled per instruction set (AG_SIMD_CLONES).

namespace detail {

MaskRows mask_rows(const Tensor& mask, const Shape& scores) {
  MaskRows rows;
  if (!mask.defined() || shape_numel(scores) == 0) return rows;
  rows.data = mask.data();
  const std::vector<int64_t> strides = kernel::broadcast_strides(mask.shape(), scores);
  rows.key_stride = strides.back();
  rows.offset.resize(shape_numel(scores) / (scores.empty() ? 1 : scores.back()));
  int64_t* offset = rows.offset.data();
  kernel::for_each_row(scores, strides, strides,
                       [&](int64_t, int64_t mask_offset, int64_t) { *offset++ = mask_offset; });
  return rows;
}

namespace {

// z_k for row r of the scores: x_k * scale, or -inf where the mask blocks.
AG_ALWAYS_INLINE real masked_score(const real* xr, real scale, const MaskRows& mask, int64_t r,
                                   int64_t k) {
  const real minus_inf = -std::numeric_limits<real>::infinity();
  if (mask.data == nullptr) return xr[k] * scale;
  return mask.data[mask.offset[r] + k * mask.key_stride] != 0 ? minus_inf : xr[k] * scale;
}

// The same rule for `together` rows from row r0, rows of at least one Lanes
// of keys: each step (mask and scale with the running max, exp, sum, scale by
// 1 / sum) runs for the rows in turn. A row's max and sum are folded across
// the lanes of a register, a chain of shuffles and ops, and with the rows
// side by side those chains overlap: one row at a time took 35 ns a row,
// four together take 22 (4096 rows of 32 keys under a causal mask).
constexpr int together = 4;
AG_ALWAYS_INLINE void masked_softmax_rows_together(const real* x, real scale, const MaskRows& mask,
                                                   real* y, int64_t r0, int64_t size) {
  const real minus_inf = -std::numeric_limits<real>::infinity();
  const int64_t whole = size - size % lanes_of_real;  // keys in whole Lanes
  real max[together], sum[together];
  for (int n = 0; n < together; ++n) {
    const int64_t r = r0 + n;
    const real* xr = x + r * size;
    real* yr = y + r * size;
    Lanes lane_max;
    for (int l = 0; l < lanes_of_real; ++l) lane_max[l] = minus_inf;
    const real* m = mask.data == nullptr ? nullptr : mask.data + mask.offset[r];
    for (int64_t k = 0; k < whole; k += lanes_of_real) {
      Lanes z;
      std::memcpy(&z, xr + k, sizeof z);
      z *= scale;
      if (m != nullptr && mask.key_stride != 0) {
        Lanes blocked;
        std::memcpy(&blocked, m + k, sizeof blocked);
        z = blocked != 0 ? minus_inf : z;
      } else if (m != nullptr && *m != 0) {
        for (int l = 0; l < lanes_of_real; ++l) z[l] = minus_inf;  // the whole row blocked
      }
      std::memcpy(yr + k, &z, sizeof z);
      lane_max = z > lane_max ? z : lane_max;  // NaN ignored, as max_lanes
    }
    max[n] = fold_max(lane_max);
    for (int64_t k = whole; k < size; ++k) {
      yr[k] = masked_score(xr, scale, mask, r, k);
      max[n] = yr[k] > max[n] ? yr[k] : max[n];
    }
    if (max[n] == minus_inf) max[n] = 0;  // a row blocked everywhere: its exps are 0
  }
  for (int n = 0; n < together; ++n) {
    real* yr = y + (r0 + n) * size;
    for (int64_t k = 0; k < size; ++k) yr[k] = fast::exp(yr[k] - max[n]);
    Lanes lane_sum = {};
    for (int64_t k = 0; k < whole; k += lanes_of_real) {
      Lanes e;
      std::memcpy(&e, yr + k, sizeof e);
      lane_sum += e;
    }
    sum[n] = fold_sum(lane_sum);
    for (int64_t k = whole; k < size; ++k) sum[n] += yr[k];
  }
  for (int n = 0; n < together; ++n) kernel::divide_by_sum(y + (r0 + n) * size, size, sum[n]);
}

}  // namespace

// [F2.3] [F4.8] [F2.4] z = x / divisor, z = -inf where the mask blocks, each row of z
// softmaxed in place by the engine's one softmax rule (core/softmax_row.hpp: a
// row blocked everywhere gets zeros, a NaN anywhere makes the row NaN). The
// division is a multiplication by 1 / divisor: the same float when the divisor
// is a power of two (sqrt(d_k) for d_k = 4, 16, 64, ...), within an ulp
// otherwise, and a tenth of the time of a vector division.
AG_SIMD_CLONES void scaled_masked_softmax_rows(const real* x, real divisor, const MaskRows& mask,
                                               real* y, int64_t rows, int64_t size) noexcept {
  const real scale = 1 / divisor;
  int64_t r = 0;
  if (size >= lanes_of_real)
    for (; r + together <= rows; r += together)
      masked_softmax_rows_together(x, scale, mask, y, r, size);
  // Short rows (fewer keys than a Lanes: 8 - 15 floats, where the 8 lanes of
  // core/kernels.hpp do better), and the last rows % together.
  const real minus_inf = -std::numeric_limits<real>::infinity();
  for (; r < rows; ++r) {
    const real* xr = x + r * size;
    real* yr = y + r * size;
    if (mask.data == nullptr) {
      for (int64_t k = 0; k < size; ++k) yr[k] = xr[k] * scale;
    } else if (mask.key_stride == 0) {
      const bool blocked = mask.data[mask.offset[r]] != 0;
      for (int64_t k = 0; k < size; ++k) yr[k] = blocked ? minus_inf : xr[k] * scale;
    } else {
      const real* m = mask.data + mask.offset[r];
      for (int64_t k = 0; k < size; ++k) yr[k] = m[k] != 0 ? minus_inf : xr[k] * scale;
    }
    kernel::softmax_row(yr, yr, size);
  }
}

// dL/dx_k = y_k (g_k - sum_i g_i y_i) / divisor: softmax's backward row
// (core/softmax_row.hpp) with the scale's factor (blocked positions have y = 0,
// so no gradient). dx may be g.
// Rows of at least a Lanes of keys go `together` at a time, as forward: each
// row's sum of g y folded across a register's lanes, the folds side by side.
AG_SIMD_CLONES void scaled_softmax_backward_rows(const real* g, const real* y, real divisor,
                                                 real* dx, int64_t rows, int64_t size) noexcept {
  const real scale = 1 / divisor;
  const int64_t whole = size - size % lanes_of_real;
  int64_t r = 0;
  if (size >= lanes_of_real)
    for (; r + together <= rows; r += together) {
      real dot[together];
      for (int n = 0; n < together; ++n) {
        const real* gr = g + (r + n) * size;
        const real* yr = y + (r + n) * size;
        Lanes lane_dot = {};
        for (int64_t k = 0; k < whole; k += lanes_of_real) {
          Lanes gk, yk;
          std::memcpy(&gk, gr + k, sizeof gk);
          std::memcpy(&yk, yr + k, sizeof yk);
          lane_dot += gk * yk;
        }
        dot[n] = fold_sum(lane_dot);
        for (int64_t k = whole; k < size; ++k) dot[n] += gr[k] * yr[k];
      }
      for (int n = 0; n < together; ++n) {
        const int64_t row = (r + n) * size;
        kernel::softmax_backward_given_dot(g + row, y + row, dx + row, size, dot[n], scale);
      }
    }
  for (; r < rows; ++r)
    kernel::softmax_backward_row(g + r * size, y + r * size, dx + r * size, size, scale);
}

Tensor scaled_masked_softmax(const Tensor& scores, real divisor, const Tensor& mask) {
  const int64_t size = scores.shape().back();
  const int64_t rows = size == 0 ? 0 : scores.numel() / size;
  Tensor y = Tensor::empty(scores.shape());
  scaled_masked_softmax_rows(scores.data(), divisor, mask_rows(mask, scores.shape()), y.data(),
                             rows, size);
  const std::vector<Tensor> inputs = with_mask({scores}, mask);
  record("ScaledMaskedSoftmaxBackward", y, inputs,
         [divisor, rows, size, count = inputs.size()](const Tensor& g, const Tensor& y,
                                                       const GradSums& sums) {
           Grads grads(count);
           grads[0] = sums.output_gradient_or_new(g);  // g itself when only the engine holds it
           scaled_softmax_backward_rows(g.data(), y.data(), divisor, grads[0].data(), rows, size);
           return grads;
         });
  return y;
}

}  // namespace detail

Tensor causal_mask(int64_t length) {
  AG_CHECK(length >= 0, "causal_mask: length must be >= 0, got {}", length);
  // [F4.8] seed: mask = 1 - band_part(ones((L, L)), -1, 0), the strict upper
  // triangle: 1 (blocked) where key j comes after query i.
  Tensor mask = zeros({length, length}, "causal_mask");
  for (int64_t i = 0; i < length; ++i)
    for (int64_t j = i + 1; j < length; ++j) mask.data()[i * length + j] = 1;
  return mask;
}

Tensor padding_mask(const std::vector<int64_t>& lengths, int64_t length) {
  AG_CHECK(length >= 0, "padding_mask: length must be >= 0, got {}", length);
  const int64_t batch = static_cast<int64_t>(lengths.size());
  Tensor mask = zeros({batch, 1, length}, "padding_mask");
  for (int64_t b = 0; b < batch; ++b) {
    AG_CHECK(lengths[b] >= 0 && lengths[b] <= length,
             "padding_mask: length {} of sequence {} is outside 0..{}", lengths[b], b, length);
    // [F4.8] positions past the sequence's end are padding: blocked
    for (int64_t t = lengths[b]; t < length; ++t) mask.data()[b * length + t] = 1;
  }
  return mask;
}

Tensor padding_mask(const Tensor& tokens, int64_t pad_id) {
  AG_CHECK(tokens.defined() && tokens.dim() == 2, "padding_mask: tokens {} must be (batch, time)",
           describe(tokens));
  // [F4.8] seed: padding_mask = cast(equal(targets, 0)): 1 where the token is padding
  Tensor mask = kernel::map(tokens, [pad_id](real t) { return real(t == real(pad_id)); });
  return kernel::reshape(mask, {tokens.size(0), 1, tokens.size(1)});
}

Tensor combine_masks(const Tensor& a, const Tensor& b) {
  // [F4.8] seed: combined_mask = maximum(padding_mask, lookahead_mask):
  // blocked where either blocks (a NaN in either stays NaN, as torch.maximum)
  AG_CHECK(a.defined() && b.defined(), "combine_masks: both masks must be defined tensors, got {} "
           "and {}", describe(a), describe(b));
  return kernel::zip(a, b, "combine_masks",
                     [](real x, real y) { return x > y || std::isnan(x) ? x : y; });
}

}  // namespace ag::nn
