#include "core/creation.hpp"

#include <cmath>

#include "core/error.hpp"

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

// Appends the innermost lists to `out`, checking every row has `width` values.
void append_rows(std::vector<real>& out, std::initializer_list<std::initializer_list<real>> rows,
                 size_t width) {
  for (const auto& row : rows) {
    AG_CHECK(row.size() == width, "tensor: ragged nested list: a row has {} values, expected {}",
             row.size(), width);
    out.insert(out.end(), row.begin(), row.end());
  }
}

size_t first_size(auto list) { return list.size() == 0 ? 0 : list.begin()->size(); }

}  // namespace

Tensor tensor(std::initializer_list<real> values) {
  return from_vector(std::vector<real>(values), {static_cast<int64_t>(values.size())});
}

Tensor tensor(std::initializer_list<std::initializer_list<real>> rows) {
  std::vector<real> data;
  size_t cols = first_size(rows);
  append_rows(data, rows, cols);
  return from_vector(std::move(data), {int64_t(rows.size()), int64_t(cols)});
}

Tensor tensor(std::initializer_list<std::initializer_list<std::initializer_list<real>>> blocks) {
  std::vector<real> data;
  size_t rows = first_size(blocks);
  size_t cols = rows == 0 ? 0 : first_size(*blocks.begin());
  for (const auto& block : blocks) {
    AG_CHECK(block.size() == rows, "tensor: ragged nested list: a block has {} rows, expected {}",
             block.size(), rows);
    append_rows(data, block, cols);
  }
  return from_vector(std::move(data), {int64_t(blocks.size()), int64_t(rows), int64_t(cols)});
}

Tensor tensor(
    std::initializer_list<std::initializer_list<std::initializer_list<std::initializer_list<real>>>>
        groups) {
  std::vector<real> data;
  size_t blocks = first_size(groups);
  size_t rows = blocks == 0 ? 0 : first_size(*groups.begin());
  size_t cols = rows == 0 ? 0 : first_size(*groups.begin()->begin());
  for (const auto& group : groups) {
    AG_CHECK(group.size() == blocks,
             "tensor: ragged nested list: a group has {} blocks, expected {}", group.size(),
             blocks);
    for (const auto& block : group) {
      AG_CHECK(block.size() == rows, "tensor: ragged nested list: a block has {} rows, expected {}",
               block.size(), rows);
      append_rows(data, block, cols);
    }
  }
  return from_vector(std::move(data),
                     {int64_t(groups.size()), int64_t(blocks), int64_t(rows), int64_t(cols)});
}

Tensor scalar(real value) { return from_vector({value}, {}); }

Tensor full(const Shape& shape, real value) {
  check_sizes(shape, "full");
  Tensor t = Tensor::empty(shape);
  std::fill(t.data(), t.data() + t.numel(), value);
  return t;
}
Tensor zeros(const Shape& shape) {
  check_sizes(shape, "zeros");
  return full(shape, 0);
}
Tensor ones(const Shape& shape) {
  check_sizes(shape, "ones");
  return full(shape, 1);
}
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
  Tensor t = Tensor::empty({n});
  for (int64_t i = 0; i < n; ++i) t.data()[i] = start + static_cast<real>(i) * step;
  return t;
}

Tensor linspace(real start, real end, int64_t steps) {
  AG_CHECK(steps >= 0, "linspace: steps must be >= 0, got {}", steps);
  Tensor t = Tensor::empty({steps});
  for (int64_t i = 0; i < steps; ++i)
    t.data()[i] = steps == 1 ? start : start + (end - start) * real(i) / real(steps - 1);
  return t;
}

Tensor rand(const Shape& shape, Generator& gen) {
  check_sizes(shape, "rand");
  Tensor t = Tensor::empty(shape);
  for (real& x : t.impl()->data) x = uniform_real(gen);
  return t;
}

Tensor uniform(const Shape& shape, real low, real high, Generator& gen) {
  AG_CHECK(low <= high, "uniform: low {} is greater than high {}", low, high);
  check_sizes(shape, "uniform");
  Tensor t = Tensor::empty(shape);
  for (real& x : t.impl()->data) {
    x = low + (high - low) * uniform_real(gen);
    if (x >= high && low < high) x = std::nextafter(high, low);  // rounding must not reach high
  }
  return t;
}

Tensor randn(const Shape& shape, Generator& gen) {
  check_sizes(shape, "randn");
  Tensor t = Tensor::empty(shape);
  for (real& x : t.impl()->data) x = static_cast<real>(gen.normal());
  return t;
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& gen) {
  check_sizes(shape, "randint");
  AG_CHECK(low < high, "randint: empty range [{}, {})", low, high);
  Tensor t = Tensor::empty(shape);
  for (real& x : t.impl()->data) x = static_cast<real>(gen.randint(low, high));
  return t;
}

Tensor from_vector(std::vector<real> data, const Shape& shape) {
  check_sizes(shape, "from_vector");
  AG_CHECK(static_cast<int64_t>(data.size()) == shape_numel(shape),
           "from_vector: {} values cannot fill shape {} ({} elements)", data.size(),
           shape_str(shape), shape_numel(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->data.assign(data.begin(), data.end());
  impl->shape = shape;
  return Tensor(std::move(impl));
}

Tensor from_vector(std::vector<real> data) {
  auto n = static_cast<int64_t>(data.size());
  return from_vector(std::move(data), {n});
}

}  // namespace ag
