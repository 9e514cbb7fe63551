// Reductions: sum, mean, max, over all elements or along one dim.
#include "autograd/node.hpp"
#include "autograd/ops.hpp"
#include "core/creation.hpp"
#include "core/kernels.hpp"

namespace ag {

namespace {

// The gradient of a reduction along dim without keepdim lacks that dim;
// put it back as size 1 so it broadcasts over the reduced elements.
Tensor with_kept_dim(const Tensor& g, const Shape& input, int64_t dim, bool keepdim) {
  if (keepdim || input.empty()) return g;
  return kernel::reshape(g, kernel::reduced_shape(input, dim, true));
}

}  // namespace

Tensor sum(const Tensor& a) {
  check_defined(a, "sum");
  Tensor out = scalar(kernel::sum_all(a));
  // d(sum_i a_i)/da_j = 1: every element gets the upstream gradient
  record("SumBackward", out, {a}, [shape = a.shape()](const Tensor& g, const Tensor&) {
    return Grads{full(shape, g.item())};
  });
  return out;
}

Tensor sum(const Tensor& a, int64_t dim, bool keepdim) {
  check_defined(a, "sum");
  dim = normalize_dim(dim, a.dim(), "sum", a.shape());
  Tensor out = kernel::sum_dim(a, dim, keepdim);  // a 0-dim a gives a copy of itself
  // d(sum_k a_k)/da_j = 1 along dim: broadcast g back over the summed dim
  record("SumBackward", out, {a},
         [shape = a.shape(), dim, keepdim](const Tensor& g, const Tensor&) {
           return Grads{kernel::broadcast_to(with_kept_dim(g, shape, dim, keepdim), shape)};
         });
  return out;
}

Tensor mean(const Tensor& a) {
  check_defined(a, "mean");
  AG_CHECK(a.numel() > 0, "mean: {} has no elements", describe(a));
  const real n = static_cast<real>(a.numel());
  Tensor out = scalar(kernel::sum_all(a) / n);
  // d(sum_i a_i / n)/da_j = 1/n
  record("MeanBackward", out, {a}, [shape = a.shape(), n](const Tensor& g, const Tensor&) {
    return Grads{full(shape, g.item() / n)};
  });
  return out;
}

Tensor mean(const Tensor& a, int64_t dim, bool keepdim) {
  check_defined(a, "mean");
  dim = normalize_dim(dim, a.dim(), "mean", a.shape());
  const int64_t count = a.dim() == 0 ? 1 : a.shape()[dim];
  AG_CHECK(count > 0, "mean: dim {} of {} is empty", dim, describe(a));
  const real n = static_cast<real>(count);
  Tensor out = kernel::sum_dim(a, dim, keepdim, "mean");  // a 0-dim a gives a copy of itself
  for (real& x : out.impl()->data) x /= n;
  // d(sum_k a_k / n)/da_j = 1/n along dim
  record("MeanBackward", out, {a},
         [shape = a.shape(), dim, keepdim, n](const Tensor& g, const Tensor&) {
           Tensor spread = kernel::broadcast_to(with_kept_dim(g, shape, dim, keepdim), shape);
           return Grads{kernel::map(spread, [n](real x) { return x / n; })};
         });
  return out;
}

Tensor max(const Tensor& a) {
  check_defined(a, "max");
  AG_CHECK(a.numel() > 0, "max: {} has no elements", describe(a));
  std::vector<int64_t> argmax;
  kernel::max_dim(kernel::reshape(a, {a.numel()}), 0, false, &argmax);
  const int64_t best = argmax[0];
  Tensor out = scalar(a.data()[best]);
  // d(max)/da_j = 1 for the (first) maximal element j, 0 elsewhere
  record("MaxBackward", out, {a}, [shape = a.shape(), best](const Tensor& g, const Tensor&) {
    Tensor grad = zeros(shape);
    grad.data()[best] = g.item();
    return Grads{grad};
  });
  return out;
}

Tensor max(const Tensor& a, int64_t dim, bool keepdim) {
  check_defined(a, "max");
  dim = normalize_dim(dim, a.dim(), "max", a.shape());
  if (a.dim() == 0) return max(a);
  std::vector<int64_t> argmax;
  Tensor out = kernel::max_dim(a, dim, keepdim, &argmax);
  // d(max_k a_k)/da_j = 1 where j is the argmax along dim, else 0
  record("MaxBackward", out, {a},
         [shape = a.shape(), dim, argmax = std::move(argmax)](const Tensor& g, const Tensor&) {
           Tensor grad = zeros(shape);
           auto [outer, size, inner] = split_at(shape, dim);
           for (int64_t o = 0; o < outer; ++o)
             for (int64_t i = 0; i < inner; ++i)
               grad.data()[(o * size + argmax[o * inner + i]) * inner + i] =
                   g.data()[o * inner + i];
           return Grads{grad};
         });
  return out;
}

Tensor argmax(const Tensor& a, int64_t dim, bool keepdim) {
  check_defined(a, "argmax");
  dim = normalize_dim(dim, a.dim(), "argmax", a.shape());
  if (a.dim() == 0) return zeros({});
  AG_CHECK(a.shape()[dim] > 0, "argmax: cannot take the argmax over an empty dim {} of shape {}",
           dim, shape_str(a.shape()));
  std::vector<int64_t> index;
  Tensor out = kernel::max_dim(a, dim, keepdim, &index, "argmax");
  for (int64_t i = 0; i < out.numel(); ++i) out.data()[i] = static_cast<real>(index[i]);
  return out;  // indices are not differentiable: no node
}

}  // namespace ag
