// Making tensors: from literals, constants, ranges, random draws, and vectors.
// Names and behaviour follow PyTorch (torch.zeros, torch.arange, ...).
#pragma once

#include <initializer_list>
#include <vector>

#include "core/generator.hpp"
#include "core/tensor.hpp"

namespace ag {

// A number, or a braced list of NestedLists: what ag::tensor reads. One
// recursive type (rather than an overload per depth) so that every depth works
// and a column such as {{1}, {0}} is not ambiguous.
class NestedList {
 public:
  NestedList(real value) : value_(value) {}  // NOLINT: implicit, so {1, 2} works
  NestedList(std::initializer_list<NestedList> items) : items_(items), is_list_(true) {}

  bool is_list() const { return is_list_; }
  real value() const { return value_; }
  const std::vector<NestedList>& items() const { return items_; }

 private:
  real value_ = 0;
  std::vector<NestedList> items_;
  bool is_list_ = false;
};

// ag::tensor({{1, 2}, {3, 4}}) is a (2,2) tensor, ag::tensor({{1}, {0}}) a (2,1)
// column, ag::tensor({1, 2, 3}) a (3,) vector. Lists at the same depth must
// have equal lengths.
Tensor tensor(const NestedList& values);
Tensor scalar(real value);  // a 0-dim tensor, shape ()

Tensor zeros(const Shape& shape);
Tensor ones(const Shape& shape);
// The same, for a function that makes a tensor from sizes it was given (a mask
// from a length): `op`, its name, is what an error names.
Tensor zeros(const Shape& shape, const char* op);
Tensor ones(const Shape& shape, const char* op);
Tensor full(const Shape& shape, real value);
Tensor zeros_like(const Tensor& t);
Tensor ones_like(const Tensor& t);

Tensor arange(real end);  // 0, 1, ..., < end
Tensor arange(real start, real end, real step = 1);
Tensor linspace(real start, real end, int64_t steps);  // both ends included

// Uniform in [0,1), standard normal, and integers in [low, high) (as reals).
Tensor rand(const Shape& shape, Generator& gen = default_generator());
Tensor randn(const Shape& shape, Generator& gen = default_generator());
Tensor randint(int64_t low, int64_t high, const Shape& shape, Generator& gen = default_generator());
// low and high finite, low <= high, and high - low finite, or an ag::Error.
Tensor uniform(const Shape& shape, real low, real high, Generator& gen = default_generator());
// The check of uniform's bounds, for the functions that draw the same way (init::uniform_).
void check_uniform_bounds(real low, real high, const char* op);

// Copies `data` into a tensor of `shape`; sizes must agree.
Tensor from_vector(std::vector<real> data, const Shape& shape);
Tensor from_vector(std::vector<real> data);  // 1-D

}  // namespace ag
