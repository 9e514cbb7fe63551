// Shapes, and the rules that relate them: element counts, dims, broadcasting.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ag {

// Sizes of each dimension, outermost first (row-major): (B,T,H) is {B, T, H}.
using Shape = std::vector<int64_t>;

// "(2,3)" for {2,3}, "()" for a 0-dim scalar: the form every error message uses.
std::string shape_str(const Shape& shape);

// Product of the sizes; 1 for a 0-dim tensor.
int64_t shape_numel(const Shape& shape);

// Row-major strides in elements: {2,3,4} -> {12,4,1}.
std::vector<int64_t> contiguous_strides(const Shape& shape);

// Turns a possibly negative dim (-1 = last) into 0..ndim-1, or throws
// "op: dim 3 is out of range for a tensor of shape (2,3) (valid: -2..1)".
int64_t normalize_dim(int64_t dim, int64_t ndim, const char* op, const Shape& shape);

// NumPy broadcasting: align shapes at the right; each pair of sizes must be equal
// or one of them 1. (3,1) and (1,4) -> (3,4); (4,) and (2,3,4) -> (2,3,4).
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Dims are split around `dim` as (outer, size, inner), the view every
// reduction, softmax, concat and narrow kernel loops over.
struct DimSplit {
  int64_t outer, size, inner;
};
DimSplit split_at(const Shape& shape, int64_t dim);

}  // namespace ag
