// Reductions, broadcasting's adjoint (sum_to), and softmax.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/creation.hpp"
#include "core/fast_math.hpp"
#include "core/kernels.hpp"
#include "core/softmax_row.hpp"

namespace ag::kernel {

std::vector<int64_t> broadcast_strides(const Shape& shape, const Shape& target) {
  std::vector<int64_t> own = contiguous_strides(shape);
  std::vector<int64_t> strides(target.size(), 0);
  size_t lead = target.size() - shape.size();
  for (size_t i = 0; i < shape.size(); ++i) strides[lead + i] = shape[i] == 1 ? 0 : own[i];
  return strides;
}

namespace {
// The loops of sum_to, broadcast_to and sum_dim, compiled per instruction set
// (core/simd.hpp; they must not throw, so their callers allocate).

// Walk g row by row; `so` maps each g position to the out element it was
// broadcast from (stride 0 along repeated dims), so += accumulates the sum.
AG_SIMD_CLONES void sum_to_rows(const Shape& g_shape, const std::vector<int64_t>& so, const real* x,
                                real* o) noexcept {
  std::vector<int64_t> unused(g_shape.size(), 0);
  const int64_t inner = g_shape.back(), io = so.back();
  for_each_row(g_shape, so, unused, [&](int64_t row, int64_t oo, int64_t) {
    if (io == 1)  // the common bias case: add a whole row at once (vectorized)
      for (int64_t i = 0; i < inner; ++i) o[oo + i] += x[row + i];
    else if (io == 0) {  // the row sums into one element (a (..., 1) gradient)
      real partial = 0;
      for (int64_t i = 0; i < inner; ++i) partial += x[row + i];
      o[oo] += partial;
    } else
      for (int64_t i = 0; i < inner; ++i) o[oo + i * io] += x[row + i];
  });
}

// sum_to_rows of g * b, b read through its broadcast strides sb.
AG_SIMD_CLONES void mul_sum_to_rows(const Shape& g_shape, const std::vector<int64_t>& so,
                                    const std::vector<int64_t>& sb, const real* x, const real* y,
                                    real* o) noexcept {
  const int64_t inner = g_shape.back(), io = so.back(), ib = sb.back();
  for_each_row(g_shape, so, sb, [&](int64_t row, int64_t oo, int64_t ob) {
    if (io == 0 && ib == 1)  // a row of g . a row of b into one element (alpha * h)
      o[oo] += sum_lanes(inner, [&](int64_t i) { return x[row + i] * y[ob + i]; });
    else if (io == 1 && ib == 0)
      for (int64_t i = 0; i < inner; ++i) o[oo + i] += x[row + i] * y[ob];
    else if (io == 1 && ib == 1)
      for (int64_t i = 0; i < inner; ++i) o[oo + i] += x[row + i] * y[ob + i];
    else
      for (int64_t i = 0; i < inner; ++i) o[oo + i * io] += x[row + i] * y[ob + i * ib];
  });
}

AG_SIMD_CLONES void broadcast_rows(const Shape& shape, const std::vector<int64_t>& sa,
                                   const real* x, real* y) noexcept {
  std::vector<int64_t> unused(shape.size(), 0);
  const int64_t inner = shape.back(), step = sa.back();
  for_each_row(shape, sa, unused, [&](int64_t o, int64_t oa, int64_t) {
    if (step == 1)  // a contiguous row
      for (int64_t i = 0; i < inner; ++i) y[o + i] = x[oa + i];
    else if (step == 0)  // one element repeated along the row
      for (int64_t i = 0; i < inner; ++i) y[o + i] = x[oa];
    else
      for (int64_t i = 0; i < inner; ++i) y[o + i] = x[oa + i * step];
  });
}

// out[o, i] = sum_k a[o, k, i]; the inner loop runs along contiguous memory.
AG_SIMD_CLONES void sum_dim_loop(const real* x, real* y, int64_t outer, int64_t size,
                                 int64_t inner) noexcept {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = 0; k < size; ++k)
      for (int64_t i = 0; i < inner; ++i) y[o * inner + i] += x[(o * size + k) * inner + i];
}
}  // namespace

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  Tensor out = zeros(shape);
  if (out.numel() == 1) {  // everything summed into one element
    out.data()[0] = sum_all(g);
    return out;
  }
  sum_to_rows(g.shape(), broadcast_strides(shape, g.shape()), g.data(), out.data());
  return out;
}

Tensor mul_sum_to(const Tensor& g, const Tensor& b, const Shape& shape) {
  if (g.shape() == shape && b.shape() == shape)  // nothing to sum: the product itself
    return zip(g, b, "mul", [](real x, real y) { return x * y; });
  if (g.shape() == shape || g.dim() == 0 || shape_numel(shape) == 1)
    return sum_to(zip(g, b, "mul", [](real x, real y) { return x * y; }), shape);
  Tensor out = zeros(shape);
  mul_sum_to_rows(g.shape(), broadcast_strides(shape, g.shape()),
                  broadcast_strides(b.shape(), g.shape()), g.data(), b.data(), out.data());
  return out;
}

Tensor broadcast_to(const Tensor& a, const Shape& shape, const char* op) {
  if (a.shape() == shape) return a;
  Tensor out = Tensor::empty(broadcast_shapes(a.shape(), shape, op), op);
  AG_CHECK(out.shape() == shape, "{}: {} cannot be broadcast to {}", op, shape_str(a.shape()),
           shape_str(shape));
  broadcast_rows(shape, broadcast_strides(a.shape(), shape), a.data(), out.data());
  return out;
}

namespace {

// Blocks of 1024 elements are summed in four Lanes (64 floats, or 32 doubles)
// of independent partial sums: the adds no longer wait for each other and run
// a whole register at a time. Each block's total is then added in double, so
// a sum of 1e6 floats keeps its digits instead of losing ~3 as one running
// float sum would. Compiled per instruction set (core/simd.hpp).
AG_SIMD_CLONES double sum_in_blocks(const real* x, int64_t n) noexcept {
  constexpr int64_t block = 1024, step = 4 * lanes_of_real;
  static_assert(block % step == 0);
  double total = 0;
  int64_t i = 0;
  for (; i + block <= n; i += block) {
    Lanes s0 = {}, s1 = {}, s2 = {}, s3 = {}, v0, v1, v2, v3;
    for (int64_t b = i; b < i + block; b += step) {
      std::memcpy(&v0, x + b, sizeof(Lanes));
      std::memcpy(&v1, x + b + lanes_of_real, sizeof(Lanes));
      std::memcpy(&v2, x + b + 2 * lanes_of_real, sizeof(Lanes));
      std::memcpy(&v3, x + b + 3 * lanes_of_real, sizeof(Lanes));
      s0 += v0;
      s1 += v1;
      s2 += v2;
      s3 += v3;
    }
    s0 += s1;
    s2 += s3;
    s0 += s2;
    total += fold_sum(s0);
  }
  for (; i < n; ++i) total += x[i];
  return total;
}

}  // namespace

real sum_all(const Tensor& a) { return static_cast<real>(sum_in_blocks(a.data(), a.numel())); }

Shape reduced_shape(const Shape& shape, int64_t dim, bool keepdim) {
  Shape out = shape;
  if (out.empty()) return out;
  if (keepdim)
    out[dim] = 1;
  else
    out.erase(out.begin() + dim);
  return out;
}

Tensor sum_dim(const Tensor& a, int64_t dim, bool keepdim, const char* op) {
  Tensor out = zeros(reduced_shape(a.shape(), dim, keepdim), op);
  // Nothing to add. (The loops would still count through outer x size, which
  // for a zero-size tensor such as (2^62, 0) is 2^62 empty steps.)
  if (a.numel() == 0) return out;
  auto [outer, size, inner] = split_at(a.shape(), dim);
  sum_dim_loop(a.data(), out.data(), outer, size, inner);
  return out;
}

namespace {
// Whether x should replace the maximum so far: larger, or NaN (a NaN anywhere
// makes the max NaN, as in PyTorch, so that a NaN loss is not hidden).
bool beats(real x, real best) { return x > best || (std::isnan(x) && !std::isnan(best)); }
}  // namespace

Tensor max_dim(const Tensor& a, int64_t dim, bool keepdim, std::vector<int64_t>* argmax,
               const char* op) {
  auto [outer, size, inner] = split_at(a.shape(), dim);
  AG_CHECK(size > 0, "{}: cannot take the max over an empty dim {} of shape {}", op, dim,
           shape_str(a.shape()));
  Tensor out = Tensor::empty(reduced_shape(a.shape(), dim, keepdim), op);
  if (argmax) argmax->assign(outer * inner, 0);
  if (out.numel() == 0) return out;
  const real* x = a.data();
  real* y = out.data();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      int64_t best = 0;
      for (int64_t k = 1; k < size; ++k)
        if (beats(x[(o * size + k) * inner + i], x[(o * size + best) * inner + i])) best = k;
      y[o * inner + i] = x[(o * size + best) * inner + i];
      if (argmax) (*argmax)[o * inner + i] = best;
    }
  return out;
}

namespace {

// The rows of the softmax kernels below, each row by the rule of core/softmax_row.hpp.
AG_SIMD_CLONES void softmax_rows(const real* x, real* y, int64_t rows, int64_t size,
                                 bool log) noexcept {
  for (int64_t r = 0; r < rows; ++r) {
    if (log)
      log_softmax_row(x + r * size, y + r * size, size);
    else
      softmax_row(x + r * size, y + r * size, size);
  }
}

AG_SIMD_CLONES void softmax_backward_rows(const real* g, const real* y, real* dx, int64_t rows,
                                          int64_t size) noexcept {
  for (int64_t r = 0; r < rows; ++r)
    softmax_backward_row(g + r * size, y + r * size, dx + r * size, size);
}

// The permutation that swaps dim with the last one (its own inverse): a
// softmax over another dim is the softmax of the last dim of that copy.
std::vector<int64_t> swap_with_last(int64_t dims, int64_t dim) {
  std::vector<int64_t> order(dims);
  for (int64_t d = 0; d < dims; ++d) order[d] = d;
  std::swap(order[dim], order[dims - 1]);
  return order;
}

// Whether each slice along dim is a contiguous row: dim is the last one that
// is not 1 (a (B,T,1) score softmaxed over T counts).
bool rows_are_contiguous(const Tensor& a, int64_t dim) {
  return a.dim() == 0 || split_at(a.shape(), dim).inner == 1;
}

Tensor softmax_along(const Tensor& a, int64_t dim, bool log) {
  if (!rows_are_contiguous(a, dim)) {
    const std::vector<int64_t> order = swap_with_last(a.dim(), dim);
    return permute(softmax_along(permute(a, order), a.dim() - 1, log), order);
  }
  Tensor out = Tensor::empty(a.shape());
  const int64_t size = a.dim() == 0 ? 1 : a.shape()[dim];
  const int64_t rows = size == 0 ? 0 : a.numel() / size;
  softmax_rows(a.data(), out.data(), rows, size, log);
  return out;
}

}  // namespace

Tensor softmax(const Tensor& a, int64_t dim) { return softmax_along(a, dim, /*log=*/false); }

Tensor log_softmax(const Tensor& a, int64_t dim) { return softmax_along(a, dim, /*log=*/true); }

Tensor softmax_backward(const Tensor& g, const Tensor& y, int64_t dim) {
  if (!rows_are_contiguous(y, dim)) {
    const std::vector<int64_t> order = swap_with_last(y.dim(), dim);
    return permute(softmax_backward(permute(g, order), permute(y, order), y.dim() - 1), order);
  }
  Tensor dx = Tensor::empty(y.shape());
  const int64_t size = y.dim() == 0 ? 1 : y.shape()[dim];
  const int64_t rows = size == 0 ? 0 : y.numel() / size;
  softmax_backward_rows(g.data(), y.data(), dx.data(), rows, size);
  return dx;
}

}  // namespace ag::kernel
