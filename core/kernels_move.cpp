// Kernels that move elements: permute, concatenate, narrow, index_select.
#include <algorithm>
#include <cstring>

#include "core/creation.hpp"
#include "core/kernels.hpp"

namespace ag::kernel {

namespace {
// memcpy of n elements; n may be 0, where the pointers of an empty tensor may
// be null (which memcpy does not allow even for 0 bytes).
void copy_elements(real* to, const real* from, int64_t n) {
  if (n > 0) std::memcpy(to, from, sizeof(real) * n);
}
}  // namespace

Tensor reshape(const Tensor& a, const Shape& shape) {
  Tensor out = Tensor::empty(shape, "reshape");
  copy_elements(out.data(), a.data(), a.numel());
  return out;
}

Tensor reshape(Tensor&& a, const Shape& shape) {
  if (a.use_count() != 1 || a.grad_fn()) return reshape(static_cast<const Tensor&>(a), shape);
  auto impl = make_tensor_impl();
  impl->data = std::move(a.impl()->data);  // a is a temporary nobody else sees
  impl->shape = shape;
  return Tensor(std::move(impl));
}

namespace {
// permute's loop (compiled per instruction set, core/simd.hpp): row by row of
// the output, reading `a` through the permuted strides.
AG_SIMD_CLONES void permute_rows(const Shape& shape, const std::vector<int64_t>& read,
                                 const real* x, real* y) noexcept {
  std::vector<int64_t> none(shape.size(), 0);
  const int64_t inner = shape.empty() ? 1 : shape.back(), step = read.empty() ? 0 : read.back();
  for_each_row(shape, read, none, [&](int64_t o, int64_t offset, int64_t) {
    if (step == 1)  // the last dim stays last (the heads split of attention): a plain copy
      for (int64_t i = 0; i < inner; ++i) y[o + i] = x[offset + i];
    else
      for (int64_t i = 0; i < inner; ++i) y[o + i] = x[offset + i * step];
  });
}
}  // namespace

Tensor permute(const Tensor& a, const std::vector<int64_t>& dims) {
  const Shape& in = a.shape();
  Shape shape(dims.size());
  std::vector<int64_t> in_strides = contiguous_strides(in);
  std::vector<int64_t> read(dims.size());  // stride in `a` of each output dim
  for (size_t i = 0; i < dims.size(); ++i) {
    shape[i] = in[dims[i]];
    read[i] = in_strides[dims[i]];
  }
  Tensor out = Tensor::empty(shape, "permute");
  if (out.numel() == 0) return out;
  permute_rows(shape, read, a.data(), out.data());
  return out;
}

Tensor cat(const std::vector<Tensor>& parts, int64_t dim) {
  Shape shape = parts[0].shape();
  shape[dim] = 0;
  for (const Tensor& p : parts) shape[dim] = checked_add(shape[dim], p.shape()[dim], "cat", "size");
  Tensor out = Tensor::empty(shape, "cat");
  // An empty result has nothing to copy; its loops could still count to 2^62.
  if (out.numel() == 0) return out;
  auto [outer, total, inner] = split_at(shape, dim);
  // Each output slab [o] is the parts' slabs [o] one after another.
  int64_t written = 0;
  for (const Tensor& p : parts) {
    int64_t chunk = p.shape()[dim] * inner;
    for (int64_t o = 0; o < outer; ++o)
      copy_elements(out.data() + o * total * inner + written, p.data() + o * chunk, chunk);
    written += chunk;
  }
  return out;
}

Tensor narrow(const Tensor& a, int64_t dim, int64_t start, int64_t length) {
  Shape shape = a.shape();
  shape[dim] = length;
  Tensor out = Tensor::empty(shape, "narrow");
  if (out.numel() == 0) return out;  // nothing to copy (see cat)
  auto [outer, size, inner] = split_at(a.shape(), dim);
  for (int64_t o = 0; o < outer; ++o)
    copy_elements(out.data() + o * length * inner, a.data() + (o * size + start) * inner,
                  length * inner);
  return out;
}

Tensor unnarrow(const Tensor& g, const Shape& shape, int64_t dim, int64_t start) {
  if (g.numel() == 0) return zeros(shape);  // narrow took nothing: every gradient is 0
  Tensor out = Tensor::empty(shape, "narrow");
  auto [outer, size, inner] = split_at(shape, dim);
  const int64_t length = g.shape()[dim];
  for (int64_t o = 0; o < outer; ++o) {
    real* slab = out.data() + o * size * inner;
    // the elements narrow did not take get gradient 0 (before and after its stretch)
    std::fill(slab, slab + start * inner, real(0));
    copy_elements(slab + start * inner, g.data() + o * length * inner, length * inner);
    std::fill(slab + (start + length) * inner, slab + size * inner, real(0));
  }
  return out;
}

void unnarrow_add(const Tensor& g, Tensor& sum, int64_t dim, int64_t start) {
  if (g.numel() == 0) return;
  auto [outer, size, inner] = split_at(sum.shape(), dim);
  const int64_t chunk = g.shape()[dim] * inner;
  real* out = sum.data() + start * inner;
  for (int64_t o = 0; o < outer; ++o)
    zip_loop(out + o * size * inner, g.data() + o * chunk, out + o * size * inner, chunk, false,
             false, [](real x, real y) { return x + y; });
}

Tensor index_select(const Tensor& a, int64_t dim, const std::vector<int64_t>& index) {
  Shape shape = a.shape();
  shape[dim] = static_cast<int64_t>(index.size());
  Tensor out = Tensor::empty(shape, "index_select");
  if (out.numel() == 0) return out;  // nothing to copy (see cat)
  auto [outer, size, inner] = split_at(a.shape(), dim);
  const int64_t n = shape[dim];
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < n; ++i)
      copy_elements(out.data() + (o * n + i) * inner, a.data() + (o * size + index[i]) * inner,
                    inner);
  return out;
}

Tensor index_add(const Shape& shape, int64_t dim, const std::vector<int64_t>& index,
                 const Tensor& src) {
  Tensor out = zeros(shape);
  index_add_into(out, dim, index, src);
  return out;
}

void index_add_into(Tensor& sum, int64_t dim, const std::vector<int64_t>& index,
                    const Tensor& src) {
  if (src.numel() == 0) return;
  auto [outer, size, inner] = split_at(sum.shape(), dim);
  const int64_t n = static_cast<int64_t>(index.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < n; ++i) {
      // += : an index that appears twice (the same token twice) gets both rows.
      real* y = sum.data() + (o * size + index[i]) * inner;
      const real* x = src.data() + (o * n + i) * inner;
      for (int64_t j = 0; j < inner; ++j) y[j] += x[j];
    }
}

}  // namespace ag::kernel
