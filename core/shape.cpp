#include "core/shape.hpp"

#include "core/error.hpp"

namespace ag {

std::string shape_str(const Shape& shape) {
  return fmt::format("({})", fmt::join(shape, ","));
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

std::vector<int64_t> contiguous_strides(const Shape& shape) {
  std::vector<int64_t> strides(shape.size());
  int64_t stride = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= shape[i];
  }
  return strides;
}

int64_t normalize_dim(int64_t dim, int64_t ndim, const char* op, const Shape& shape) {
  int64_t lo = ndim == 0 ? -1 : -ndim, hi = ndim == 0 ? 0 : ndim - 1;
  AG_CHECK(dim >= lo && dim <= hi, "{}: dim {} is out of range for a tensor of shape {} (valid: {}..{})",
        op, dim, shape_str(shape), lo, hi);
  return dim < 0 ? dim + (ndim == 0 ? 1 : ndim) : dim;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  if (a == b) return a;
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    // Align at the right: missing leading dims count as size 1.
    int64_t sa = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t sb = i < n - b.size() ? 1 : b[i - (n - b.size())];
    AG_CHECK(sa == sb || sa == 1 || sb == 1,
          "{}: shapes {} and {} cannot be broadcast: sizes {} and {} differ at dim {} "
          "(counting from the left of the aligned shape) and neither is 1",
          op, shape_str(a), shape_str(b), sa, sb, i);
    out[i] = sa == 1 ? sb : sa;
  }
  return out;
}

DimSplit split_at(const Shape& shape, int64_t dim) {
  DimSplit s{1, shape.empty() ? 1 : shape[dim], 1};
  for (int64_t i = 0; i < dim; ++i) s.outer *= shape[i];
  for (size_t i = dim + 1; i < shape.size(); ++i) s.inner *= shape[i];
  return s;
}

}  // namespace ag
