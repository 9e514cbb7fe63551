// Shapes, and the rules that relate them: element counts, dims, broadcasting.
//
// Every size computation on shapes is here, and every one is checked: a shape
// is valid when its sizes are >= 0 and their product, with each 0 counted as
// 1, fits in int64. Then its element count, each stride (a product of sizes)
// and each offset below an element count fit too, so the kernels' index
// arithmetic cannot overflow. A zero-size shape must meet the same rule:
// (0, 2^62, 2^62) has no elements, but its strides (2^124, 2^62, 1) do not fit.
// Every tensor's shape is valid (Tensor::empty checks it), and ops that make a
// new shape from valid ones (a sum of sizes in cat, a broadcast, a product in
// matmul) check theirs with the op's name.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/allocator.hpp"

namespace ag {

// Sizes of each dimension, outermost first (row-major): (B,T,H) is {B, T, H}.
// (Every tensor has one, so its memory comes from the engine's small-block lists.)
using Shape = std::vector<int64_t, BufferAllocator<int64_t>>;

// Equal sizes, dim by dim. A loop rather than the vector's own ==, which calls
// memcmp: shapes have a few dims, and ops compare them on every call.
inline bool operator==(const Shape& a, const Shape& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i]) return false;
  return true;
}

// "(2,3)" for {2,3}, "()" for a 0-dim scalar: the form every error message uses.
std::string shape_str(const Shape& shape);

// {1,0}: where flat index `flat` (row-major) lies in `shape` (flat 3 of (2,3)).
std::vector<int64_t> unravel_index(int64_t flat, const Shape& shape);
// "[1,0]", the same as messages that point at one element show it.
std::string position_str(int64_t flat, const Shape& shape);

// What makes a shape invalid, or "" when it is valid: "negative size in shape
// (2,-1)", "shape (2^40,2^40) has more elements than a 64-bit count holds
// (int64 ...)", or "shape (0,2^62,2^62) has no elements, but ...".
std::string shape_problem(const Shape& shape);

// Throws "op: <shape_problem>" for an invalid shape.
void check_sizes(const Shape& shape, const char* op);

// Product of the sizes; 1 for a 0-dim tensor. Throws "op: ..." when it
// overflows (never for a tensor's shape).
int64_t shape_numel(const Shape& shape, const char* op = "shape_numel");

// Row-major strides in elements: {2,3,4} -> {12,4,1}. Checked as shape_numel.
std::vector<int64_t> contiguous_strides(const Shape& shape);

// a + b for sizes and offsets, or "op: <what> a + b exceeds int64 ..." (cat's
// total size along its dim).
int64_t checked_add(int64_t a, int64_t b, const char* op, const char* what);

// Turns a possibly negative dim (-1 = last) into 0..ndim-1, or throws
// "op: dim 3 is out of range for a tensor of shape (2,3) (valid: -2..1)".
int64_t normalize_dim(int64_t dim, int64_t ndim, const char* op, const Shape& shape);

// NumPy broadcasting: align shapes at the right; each pair of sizes must be equal
// or one of them 1. (3,1) and (1,4) -> (3,4); (4,) and (2,3,4) -> (2,3,4).
// Throws "op: shapes (2,3) and (4) cannot be broadcast: ..." when they clash.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// The same without throwing: false when the shapes clash.
bool try_broadcast_shapes(const Shape& a, const Shape& b, Shape& out);

// The message for two clashing operands, described as the caller likes
// ("'scores' (2,3)" for a named tensor): "op: <a> and <b> cannot be broadcast:
// sizes 3 and 4 differ at dim 1 (...) and neither is 1".
std::string broadcast_error(const char* op, const std::string& what_a, const std::string& what_b,
                            const Shape& a, const Shape& b);

// Dims are split around `dim` as (outer, size, inner), the view every
// reduction, softmax, concat and narrow kernel loops over. Checked as shape_numel.
struct DimSplit {
  int64_t outer, size, inner;
};
DimSplit split_at(const Shape& shape, int64_t dim);

}  // namespace ag
