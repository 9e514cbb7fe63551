#include "core/shape.hpp"

#include <limits>

#include "core/error.hpp"

namespace ag {

std::string shape_str(const Shape& shape) { return fmt::format("({})", fmt::join(shape, ",")); }

std::vector<int64_t> unravel_index(int64_t flat, const Shape& shape) {
  std::vector<int64_t> index(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {  // the last dim varies fastest
    index[d] = shape[d] == 0 ? 0 : flat % shape[d];
    flat = shape[d] == 0 ? 0 : flat / shape[d];
  }
  return index;
}

std::string position_str(int64_t flat, const Shape& shape) {
  return fmt::format("[{}]", fmt::join(unravel_index(flat, shape), ","));
}

namespace {

constexpr int64_t int64_max = std::numeric_limits<int64_t>::max();

// a * b for a product of sizes, or "op: shape ... has more elements than ...".
int64_t multiply(int64_t a, int64_t b, const char* op, const Shape& shape) {
  int64_t product;
  AG_CHECK(!__builtin_mul_overflow(a, b, &product),
           "{}: shape {} has more elements than a 64-bit count holds (int64 max {})", op,
           shape_str(shape), int64_max);
  return product;
}

}  // namespace

std::string shape_problem(const Shape& shape) {
  bool empty = false;
  for (int64_t s : shape) {
    if (s < 0) return fmt::format("negative size in shape {}", shape_str(shape));
    empty = empty || s == 0;
  }
  // The extent: the product with each 0 counted as 1, the largest stride or
  // partial product any kernel computes for this shape.
  int64_t extent = 1;
  for (int64_t s : shape)
    if (s != 0 && __builtin_mul_overflow(extent, s, &extent))
      return empty ? fmt::format(
                         "shape {} has no elements, but its other sizes multiply past int64's "
                         "max {}, so its strides cannot be counted",
                         shape_str(shape), int64_max)
                   : fmt::format(
                         "shape {} has more elements than a 64-bit count holds (int64 "
                         "max {})",
                         shape_str(shape), int64_max);
  return "";
}

void check_sizes(const Shape& shape, const char* op) {
  if (std::string problem = shape_problem(shape); !problem.empty())
    throw Error(fmt::format("{}: {}", op, problem));
}

int64_t shape_numel(const Shape& shape, const char* op) {
  int64_t n = 1;
  for (int64_t s : shape) n = multiply(n, s, op, shape);
  return n;
}

std::vector<int64_t> contiguous_strides(const Shape& shape) {
  std::vector<int64_t> strides(shape.size());
  int64_t stride = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride = multiply(stride, shape[i], "contiguous_strides", shape);
  }
  return strides;
}

int64_t checked_add(int64_t a, int64_t b, const char* op, const char* what) {
  int64_t sum;
  AG_CHECK(!__builtin_add_overflow(a, b, &sum), "{}: {} {} + {} exceeds int64's max {}", op, what,
           a, b, int64_max);
  return sum;
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
  for (int64_t i = 0; i < dim; ++i) s.outer = multiply(s.outer, shape[i], "split_at", shape);
  for (size_t i = dim + 1; i < shape.size(); ++i)
    s.inner = multiply(s.inner, shape[i], "split_at", shape);
  return s;
}

}  // namespace ag
