// Reductions, broadcasting's adjoint (sum_to), and softmax.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/creation.hpp"
#include "core/kernels.hpp"

namespace ag::kernel {

std::vector<int64_t> broadcast_strides(const Shape& shape, const Shape& target) {
  std::vector<int64_t> own = contiguous_strides(shape);
  std::vector<int64_t> strides(target.size(), 0);
  size_t lead = target.size() - shape.size();
  for (size_t i = 0; i < shape.size(); ++i) strides[lead + i] = shape[i] == 1 ? 0 : own[i];
  return strides;
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  Tensor out = zeros(shape);
  real* o = out.data();
  const real* x = g.data();
  if (out.numel() == 1) {  // everything summed into one element
    o[0] = sum_all(g);
    return out;
  }
  // Walk g row by row; `so` maps each g position to the out element it was
  // broadcast from (stride 0 along repeated dims), so += accumulates the sum.
  std::vector<int64_t> so = broadcast_strides(shape, g.shape());
  std::vector<int64_t> unused(g.shape().size(), 0);
  const int64_t inner = g.shape().back(), io = so.back();
  for_each_row(g.shape(), so, unused, [&](int64_t row, int64_t oo, int64_t) {
    if (io == 1)  // the common bias case: add a whole row at once (vectorized)
      for (int64_t i = 0; i < inner; ++i) o[oo + i] += x[row + i];
    else
      for (int64_t i = 0; i < inner; ++i) o[oo + i * io] += x[row + i];
  });
  return out;
}

Tensor broadcast_to(const Tensor& a, const Shape& shape) {
  if (a.shape() == shape) return a;
  Tensor out = Tensor::empty(broadcast_shapes(a.shape(), shape, "broadcast_to"));
  AG_CHECK(out.shape() == shape, "broadcast_to: {} cannot be broadcast to {}", shape_str(a.shape()),
           shape_str(shape));
  std::vector<int64_t> sa = broadcast_strides(a.shape(), shape);
  std::vector<int64_t> unused(shape.size(), 0);
  const int64_t inner = shape.back(), step = sa.back();
  const real* x = a.data();
  real* y = out.data();
  for_each_row(shape, sa, unused, [&](int64_t o, int64_t oa, int64_t) {
    for (int64_t i = 0; i < inner; ++i) y[o + i] = x[oa + i * step];
  });
  return out;
}

real sum_all(const Tensor& a) {
  // Blocks of 1024 elements are summed in 16 independent lanes (the adds no
  // longer wait for each other, and the compiler uses vector registers); each
  // block's total is then added in double, so a sum of 1e6 floats keeps its
  // digits instead of losing ~3 as one running float sum would.
  constexpr int64_t lanes = 16, block = 1024;
  const real* x = a.data();
  const int64_t n = a.numel();
  double total = 0;
  int64_t i = 0;
  for (; i + block <= n; i += block) {
    real partial[lanes] = {};
    for (int64_t b = 0; b < block; b += lanes)
      for (int64_t j = 0; j < lanes; ++j) partial[j] += x[i + b + j];
    real block_total = 0;
    for (real p : partial) block_total += p;
    total += block_total;
  }
  for (; i < n; ++i) total += x[i];
  return static_cast<real>(total);
}

Shape reduced_shape(const Shape& shape, int64_t dim, bool keepdim) {
  Shape out = shape;
  if (out.empty()) return out;
  if (keepdim)
    out[dim] = 1;
  else
    out.erase(out.begin() + dim);
  return out;
}

Tensor sum_dim(const Tensor& a, int64_t dim, bool keepdim) {
  Tensor out = zeros(reduced_shape(a.shape(), dim, keepdim));
  auto [outer, size, inner] = split_at(a.shape(), dim);
  const real* x = a.data();
  real* y = out.data();
  // out[o, i] = sum_k a[o, k, i]; the inner loop runs along contiguous memory.
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = 0; k < size; ++k)
      for (int64_t i = 0; i < inner; ++i) y[o * inner + i] += x[(o * size + k) * inner + i];
  return out;
}

namespace {
// Whether x should replace the maximum so far: larger, or NaN (a NaN anywhere
// makes the max NaN, as in PyTorch, so that a NaN loss is not hidden).
bool beats(real x, real best) { return x > best || (std::isnan(x) && !std::isnan(best)); }
}  // namespace

Tensor max_dim(const Tensor& a, int64_t dim, bool keepdim, std::vector<int64_t>* argmax) {
  Tensor out = Tensor::empty(reduced_shape(a.shape(), dim, keepdim));
  auto [outer, size, inner] = split_at(a.shape(), dim);
  AG_CHECK(size > 0, "max: cannot take the max over an empty dim {} of shape {}", dim,
           shape_str(a.shape()));
  if (argmax) argmax->assign(outer * inner, 0);
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

// Shared by softmax and log_softmax: for each slice along dim, calls
// write(x, y, stride, size, max, sum_exp) with sum_exp = sum_k exp(x_k - max).
template <typename Write>
Tensor softmax_like(const Tensor& a, int64_t dim, Write write) {
  Tensor out = Tensor::empty(a.shape());
  auto [outer, size, inner] = split_at(a.shape(), dim);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      const real* x = a.data() + o * size * inner + i;
      real* y = out.data() + o * size * inner + i;
      real max = -std::numeric_limits<real>::infinity();
      for (int64_t k = 0; k < size; ++k) max = std::max(max, x[k * inner]);
      // A slice that is all -inf (every position masked) has no maximum to
      // subtract; use 0 so it gives exp(-inf) = 0 terms instead of NaN.
      if (max == -std::numeric_limits<real>::infinity()) max = 0;
      real sum = 0;
      for (int64_t k = 0; k < size; ++k) sum += std::exp(x[k * inner] - max);
      write(x, y, inner, size, max, sum);
    }
  return out;
}

}  // namespace

Tensor softmax(const Tensor& a, int64_t dim) {
  return softmax_like(a, dim,
                      [](const real* x, real* y, int64_t stride, int64_t size, real max, real sum) {
                        // exp(x - max) / sum: the max cancels, and no exp overflows.
                        // A fully masked slice (sum 0) gets all-zero weights instead of 0/0.
                        real scale = sum > 0 ? 1 / sum : 0;
                        for (int64_t k = 0; k < size; ++k)
                          y[k * stride] = std::exp(x[k * stride] - max) * scale;
                      });
}

Tensor log_softmax(const Tensor& a, int64_t dim) {
  return softmax_like(a, dim,
                      [](const real* x, real* y, int64_t stride, int64_t size, real max, real sum) {
                        // log(exp(x - max) / sum) = x - max - log(sum)
                        real log_sum = std::log(sum);
                        for (int64_t k = 0; k < size; ++k)
                          y[k * stride] = x[k * stride] - max - log_sum;
                      });
}

}  // namespace ag::kernel
