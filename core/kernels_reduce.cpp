// Reductions, broadcasting's adjoint (sum_to), and softmax.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/kernels.hpp"

namespace ag::kernel {

std::vector<int64_t> broadcast_strides(const Shape& shape, const Shape& target) {
  std::vector<int64_t> own = contiguous_strides(shape);
  std::vector<int64_t> strides(target.size(), 0);
  size_t lead = target.size() - shape.size();
  for (size_t i = 0; i < shape.size(); ++i)
    strides[lead + i] = shape[i] == 1 ? 0 : own[i];
  return strides;
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  Tensor out = Tensor::empty(shape);
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
  return zip(a, Tensor::empty(shape), "broadcast_to", [](real x, real) { return x; });
}

real sum_all(const Tensor& a) {
  // Accumulate in double: a float running sum of 1e6 terms loses ~3 digits.
  double total = 0;
  const real* x = a.data();
  for (int64_t i = 0, n = a.numel(); i < n; ++i) total += x[i];
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
  Tensor out = Tensor::empty(reduced_shape(a.shape(), dim, keepdim));
  auto [outer, size, inner] = split_at(a.shape(), dim);
  const real* x = a.data();
  real* y = out.data();
  // out[o, i] = sum_k a[o, k, i]; the inner loop runs along contiguous memory.
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t k = 0; k < size; ++k)
      for (int64_t i = 0; i < inner; ++i) y[o * inner + i] += x[(o * size + k) * inner + i];
  return out;
}

Tensor max_dim(const Tensor& a, int64_t dim, bool keepdim, std::vector<int64_t>* argmax) {
  Tensor out = Tensor::empty(reduced_shape(a.shape(), dim, keepdim));
  auto [outer, size, inner] = split_at(a.shape(), dim);
  check(size > 0, "max: cannot take the max over an empty dim {} of shape {}", dim,
        shape_str(a.shape()));
  if (argmax) argmax->assign(outer * inner, 0);
  const real* x = a.data();
  real* y = out.data();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      int64_t best = 0;
      for (int64_t k = 1; k < size; ++k)
        if (x[(o * size + k) * inner + i] > x[(o * size + best) * inner + i]) best = k;
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
  return softmax_like(a, dim, [](const real* x, real* y, int64_t stride, int64_t size, real max,
                                 real sum) {
    // exp(x - max) / sum: the max cancels, and no exp overflows.
    // A fully masked slice (sum 0) gets all-zero weights instead of 0/0.
    real scale = sum > 0 ? 1 / sum : 0;
    for (int64_t k = 0; k < size; ++k) y[k * stride] = std::exp(x[k * stride] - max) * scale;
  });
}

Tensor log_softmax(const Tensor& a, int64_t dim) {
  return softmax_like(a, dim, [](const real* x, real* y, int64_t stride, int64_t size, real max,
                                 real sum) {
    // log(exp(x - max) / sum) = x - max - log(sum)
    real log_sum = std::log(sum);
    for (int64_t k = 0; k < size; ++k) y[k * stride] = x[k * stride] - max - log_sum;
  });
}

}  // namespace ag::kernel
