#include "core/creation.hpp"

#include <cmath>

#include "core/error.hpp"
#include "core/simd.hpp"

namespace ag {

namespace {

// A uniform draw in [0, 1) at the precision of ag::real. Converting a 53-bit
// double draw to float would round values just below 1 up to exactly 1.0f;
// 24 random bits are every float in [0, 1) on a 2^-24 grid.
real uniform_real(Generator& gen) {
  if constexpr (std::is_same_v<real, float>)
    return static_cast<float>(gen.next_u64() >> 40) * 0x1.0p-24f;
  else
    return static_cast<real>(gen.uniform());
}

// What a list at a given height above the numbers is called in error messages:
// a row holds values, a block rows, a group blocks.
const char* list_name(size_t height) {
  static const char* names[] = {"row", "block", "group"};
  return height < 3 ? names[height] : "list";
}
const char* item_name(size_t height) {
  static const char* names[] = {"values", "rows", "blocks"};
  return height < 3 ? names[height] : "lists";
}

// The shape of a nested list, read along its first elements.
Shape nested_shape(const NestedList& list) {
  Shape shape;
  for (const NestedList* level = &list; level->is_list();) {
    shape.push_back(static_cast<int64_t>(level->items().size()));
    if (level->items().empty()) break;
    level = &level->items()[0];
  }
  return shape;
}

// Appends the numbers of `list` to `out` in row-major order, checking that it
// has the sizes shape[depth:] everywhere.
void flatten(const NestedList& list, const Shape& shape, size_t depth, std::vector<real>& out) {
  if (depth == shape.size()) {
    AG_CHECK(!list.is_list(),
             "tensor: ragged nested list: a list stands where a number was expected");
    out.push_back(list.value());
    return;
  }
  const size_t height = shape.size() - depth - 1;
  AG_CHECK(list.is_list(), "tensor: ragged nested list: a number stands where a {} was expected",
           list_name(height));
  AG_CHECK(static_cast<int64_t>(list.items().size()) == shape[depth],
           "tensor: ragged nested list: a {} has {} {}, expected {}", list_name(height),
           list.items().size(), item_name(height), shape[depth]);
  for (const NestedList& item : list.items()) flatten(item, shape, depth + 1, out);
}

}  // namespace

Tensor tensor(const NestedList& values) {
  Shape shape = nested_shape(values);
  std::vector<real> data;
  data.reserve(static_cast<size_t>(shape_numel(shape)));
  flatten(values, shape, 0, data);
  return from_vector(std::move(data), shape);
}

Tensor scalar(real value) { return from_vector({value}, {}); }

namespace {
// The fill loop, compiled per instruction set (core/simd.hpp): zeros() and
// the gradient of a sum write whole activations with it.
AG_SIMD_CLONES void fill_loop(real* y, int64_t n, real value) noexcept {
  for (int64_t i = 0; i < n; ++i) y[i] = value;
}

// full, under the name of the function called (zeros, ones) for its errors.
Tensor filled(const Shape& shape, real value, const char* op) {
  Tensor t = Tensor::empty(shape, op);
  fill_loop(t.data(), t.numel(), value);
  return t;
}
}  // namespace

Tensor full(const Shape& shape, real value) { return filled(shape, value, "full"); }
Tensor zeros(const Shape& shape) { return filled(shape, 0, "zeros"); }
Tensor ones(const Shape& shape) { return filled(shape, 1, "ones"); }
Tensor zeros(const Shape& shape, const char* op) { return filled(shape, 0, op); }
Tensor ones(const Shape& shape, const char* op) { return filled(shape, 1, op); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape()); }

Tensor arange(real end) { return arange(0, end, 1); }

Tensor arange(real start, real end, real step) {
  AG_CHECK(std::isfinite(start) && std::isfinite(end) && std::isfinite(step),
           "arange: start {}, end {} and step {} must be finite", start, end, step);
  AG_CHECK(step != 0, "arange: step must be non-zero");
  AG_CHECK((end - start) / step >= 0, "arange: the range [{}, {}) is empty with step {}", start,
           end, step);
  double count = std::ceil((double(end) - double(start)) / double(step));
  AG_CHECK(count < 0x1p40, "arange: [{}, {}) with step {} would have {} elements", start, end, step,
           count);
  auto n = static_cast<int64_t>(count);
  Tensor t = Tensor::empty({n}, "arange");
  for (int64_t i = 0; i < n; ++i) t.data()[i] = start + static_cast<real>(i) * step;
  return t;
}

Tensor linspace(real start, real end, int64_t steps) {
  AG_CHECK(std::isfinite(start) && std::isfinite(end),
           "linspace: start {} and end {} must be finite", start, end);
  AG_CHECK(steps >= 0, "linspace: steps must be >= 0, got {}", steps);
  Tensor t = Tensor::empty({steps}, "linspace");
  // end - start overflows for ends near the type's limits: then the same points as a
  // weighted mean of the ends, which cannot overflow
  const bool span_fits = std::isfinite(end - start);
  for (int64_t i = 0; i < steps; ++i) {
    const real f = real(i) / real(std::max<int64_t>(steps - 1, 1));  // 0 .. 1
    if (steps == 1)
      t.data()[i] = start;
    else if (span_fits)
      t.data()[i] = start + (end - start) * real(i) / real(steps - 1);
    else
      t.data()[i] = start * (1 - f) + end * f;
  }
  return t;
}

Tensor rand(const Shape& shape, Generator& gen) {
  Tensor t = Tensor::empty(shape, "rand");
  for (real& x : t.impl()->data) x = uniform_real(gen);
  return t;
}

Tensor uniform(const Shape& shape, real low, real high, Generator& gen) {
  check_uniform_bounds(low, high, "uniform");
  Tensor t = Tensor::empty(shape, "uniform");
  for (real& x : t.impl()->data) {
    x = low + (high - low) * uniform_real(gen);
    if (x >= high && low < high) x = std::nextafter(high, low);  // rounding must not reach high
  }
  return t;
}

Tensor randn(const Shape& shape, Generator& gen) {
  Tensor t = Tensor::empty(shape, "randn");
  for (real& x : t.impl()->data) x = static_cast<real>(gen.normal());
  return t;
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& gen) {
  AG_CHECK(low < high, "randint: empty range [{}, {})", low, high);
  Tensor t = Tensor::empty(shape, "randint");
  for (real& x : t.impl()->data) x = static_cast<real>(gen.randint(low, high));
  return t;
}

void check_uniform_bounds(real low, real high, const char* op) {
  AG_CHECK(std::isfinite(low) && std::isfinite(high), "{}: low {} and high {} must be finite", op,
           low, high);
  AG_CHECK(low <= high, "{}: low {} is greater than high {}", op, low, high);
  AG_CHECK(std::isfinite(high - low),
           "{}: high - low = {} - ({}) overflows {}: the draws low + (high - low) u would be "
           "infinite",
           op, high, low, real_name);
}

Tensor from_vector(std::vector<real> data, const Shape& shape) {
  check_sizes(shape, "from_vector");
  AG_CHECK(static_cast<int64_t>(data.size()) == shape_numel(shape),
           "from_vector: {} values cannot fill shape {} ({} elements)", data.size(),
           shape_str(shape), shape_numel(shape));
  Tensor t = Tensor::empty(shape, "from_vector");
  std::copy(data.begin(), data.end(), t.data());
  return t;
}

Tensor from_vector(std::vector<real> data) {
  auto n = static_cast<int64_t>(data.size());
  return from_vector(std::move(data), {n});
}

}  // namespace ag
