// The fast twin of three steps of scaled dot-product attention: [F2.3] scale,
// [F4.8] mask and [F2.4] softmax in one pass per row of the scores, and one
// pass backward. It is defined in layers/attention/scaled_dot_product.cpp, beside the
// plain lines it replaces; MultiHeadAttention's fast path runs the same row
// loops on the scores it computes head by head in place. Internal to layers/
// (layers/nn.hpp does not include it): users call scaled_dot_product_attention
// or MultiHeadAttention, which pick the plain code or this by the mode
// (core/mode.hpp). Arguments are checked by those callers.
#pragma once

#include <cstdint>
#include <vector>

#include "core/tensor.hpp"

namespace ag::nn::detail {

// Where each row of the scores (one query's scores over the keys) finds its
// row of a mask that broadcasts to the scores: an offset into the mask, and
// the mask's stride along the keys (0 when one mask value covers every key).
struct MaskRows {
  const real* data = nullptr;  // null: no mask
  std::vector<int64_t> offset;
  int64_t key_stride = 1;
};

MaskRows mask_rows(const Tensor& mask, const Shape& scores);

// Each of `rows` rows of `size` scores x: y = softmax(where(mask, -inf, x / divisor))
// (max subtracted; a row blocked everywhere gets zeros; NaN stays NaN). y may be x.
// (Compiled per instruction set where it is defined: AG_SIMD_CLONES, core/simd.hpp.)
void scaled_masked_softmax_rows(const real* x, real divisor, const MaskRows& mask, real* y,
                                int64_t rows, int64_t size) noexcept;
// Its backward: dx = y (g - rowsum(g y)) / divisor. dx may be g.
void scaled_softmax_backward_rows(const real* g, const real* y, real divisor, real* dx,
                                  int64_t rows, int64_t size) noexcept;

// = softmax(masked_fill(scores / divisor, mask, -inf), -1) as one recorded op:
//   scores (..., Tq, Tk), mask undefined or broadcasting to the scores -> (..., Tq, Tk)
Tensor scaled_masked_softmax(const Tensor& scores, real divisor, const Tensor& mask);

// The inputs a fused op records: its operands and, when there is one, the mask
// (it gets no gradient, but backward notices if it is changed in place).
inline std::vector<Tensor> with_mask(std::vector<Tensor> inputs, const Tensor& mask) {
  if (mask.defined()) inputs.push_back(mask);
  return inputs;
}

}  // namespace ag::nn::detail
