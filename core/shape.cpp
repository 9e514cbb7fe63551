#include "core/shape.hpp"

#include "core/error.hpp"

namespace ag {

std::string shape_str(const Shape& shape) { return fmt::format("({})", fmt::join(shape, ",")); }

void check_sizes(const Shape& shape, const char* op) {
  int64_t count = 1;
  for (int64_t s : shape) {
    AG_CHECK(s >= 0, "{}: negative size in shape {}", op, shape_str(shape));
    AG_CHECK(!__builtin_mul_overflow(count, s, &count),
             "{}: shape {} has more elements than a 64-bit count holds", op, shape_str(shape));
  }
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
  AG_CHECK(dim >= lo && dim <= hi,
           "{}: dim {} is out of range for a tensor of shape {} (valid: {}..{})", op, dim,
           shape_str(shape), lo, hi);
  return dim < 0 ? dim + (ndim == 0 ? 1 : ndim) : dim;
}

bool try_broadcast_shapes(const Shape& a, const Shape& b, Shape& out) {
  if (a == b) {
    out = a;
    return true;
  }
  size_t n = std::max(a.size(), b.size());
  out.assign(n, 0);
  for (size_t i = 0; i < n; ++i) {
    // Align at the right: missing leading dims count as size 1.
    int64_t sa = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t sb = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (sa != sb && sa != 1 && sb != 1) return false;
    out[i] = sa == 1 ? sb : sa;
  }
  return true;
}

std::string broadcast_error(const char* op, const std::string& what_a, const std::string& what_b,
                            const Shape& a, const Shape& b) {
  size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    int64_t sa = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t sb = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (sa != sb && sa != 1 && sb != 1)
      return fmt::format(
          "{}: {} and {} cannot be broadcast: sizes {} and {} differ at dim {} of the "
          "right-aligned shapes and neither is 1",
          op, what_a, what_b, sa, sb, i);
  }
  return fmt::format("{}: {} and {} cannot be broadcast", op, what_a, what_b);
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  Shape out;
  if (!try_broadcast_shapes(a, b, out))
    throw Error(broadcast_error(op, "shapes " + shape_str(a), shape_str(b), a, b));
  return out;
}

DimSplit split_at(const Shape& shape, int64_t dim) {
  DimSplit s{1, shape.empty() ? 1 : shape[dim], 1};
  for (int64_t i = 0; i < dim; ++i) s.outer *= shape[i];
  for (size_t i = dim + 1; i < shape.size(); ++i) s.inner *= shape[i];
  return s;
}

}  // namespace ag
