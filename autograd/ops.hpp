// Differentiable ops. Each one computes its result with a kernel and records
// a node whose backward applies the op's derivative (written next to it in
// the .cpp, with the formula in a comment). Names follow PyTorch.
#pragma once

#include <vector>

#include "core/tensor.hpp"

namespace ag {

// --- elementwise, with NumPy broadcasting (ops_elementwise.cpp) --------------------
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor neg(const Tensor& a);
Tensor add(const Tensor& a, real b);
Tensor mul(const Tensor& a, real b);
Tensor rsub(const Tensor& a, real b);  // b - a
Tensor div(const Tensor& a, real b);
Tensor rdiv(const Tensor& a, real b);  // b / a

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& a) { return neg(a); }
inline Tensor operator+(const Tensor& a, real b) { return add(a, b); }
inline Tensor operator+(real a, const Tensor& b) { return add(b, a); }
inline Tensor operator-(const Tensor& a, real b) { return add(a, -b); }
inline Tensor operator-(real a, const Tensor& b) { return rsub(b, a); }
inline Tensor operator*(const Tensor& a, real b) { return mul(a, b); }
inline Tensor operator*(real a, const Tensor& b) { return mul(b, a); }
inline Tensor operator/(const Tensor& a, real b) { return div(a, b); }
inline Tensor operator/(real a, const Tensor& b) { return rdiv(b, a); }

Tensor pow(const Tensor& a, real exponent);
Tensor exp(const Tensor& a);
Tensor log(const Tensor& a);
Tensor sqrt(const Tensor& a);
Tensor tanh(const Tensor& a);
Tensor sigmoid(const Tensor& a);
Tensor relu(const Tensor& a);

// --- reductions (ops_reduce.cpp) -------------------------------------------------
Tensor sum(const Tensor& a);  // all elements: shape ()
Tensor sum(const Tensor& a, int64_t dim, bool keepdim = false);
Tensor mean(const Tensor& a);
Tensor mean(const Tensor& a, int64_t dim, bool keepdim = false);
// The gradient of max goes to the first maximal element (ties: first wins).
Tensor max(const Tensor& a);
Tensor max(const Tensor& a, int64_t dim, bool keepdim = false);
Tensor argmax(const Tensor& a, int64_t dim, bool keepdim = false);  // indices, no gradient

// --- shapes and selection (ops_shape.cpp) -------------------------------------------
Tensor reshape(const Tensor& a, const Shape& shape);  // one size may be -1
Tensor transpose(const Tensor& a, int64_t dim0, int64_t dim1);
Tensor permute(const Tensor& a, const std::vector<int64_t>& dims);
Tensor unsqueeze(const Tensor& a, int64_t dim);
Tensor squeeze(const Tensor& a, int64_t dim);
Tensor squeeze(const Tensor& a);  // every dim of size 1
Tensor cat(const std::vector<Tensor>& parts, int64_t dim);
inline Tensor concat(const std::vector<Tensor>& parts, int64_t dim) { return cat(parts, dim); }
Tensor stack(const std::vector<Tensor>& parts, int64_t dim);
Tensor narrow(const Tensor& a, int64_t dim, int64_t start, int64_t length);
// Python's a[start:end] along dim; negative bounds count from the end.
Tensor slice(const Tensor& a, int64_t dim, int64_t start, int64_t end);
// Rows (or slices along dim) picked by integer indices; an embedding lookup is
// index_select(table, 0, token_ids). Indices given as a tensor must hold integers.
Tensor index_select(const Tensor& a, int64_t dim, const std::vector<int64_t>& index);
Tensor index_select(const Tensor& a, int64_t dim, const Tensor& index);
// The integer values of an index tensor, validated (op names the caller).
std::vector<int64_t> to_indices(const Tensor& index, const char* op);

// --- masks (ops_select.cpp) --------------------------------------------------------
// attograd has one element type, so a mask is a tensor of 0s and 1s; nonzero
// means true. Both broadcast against a.
Tensor masked_fill(const Tensor& a, const Tensor& mask, real value);
Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b);

// --- softmax, fused and numerically stable (ops_softmax.cpp) --------------------------
Tensor softmax(const Tensor& a, int64_t dim);
Tensor log_softmax(const Tensor& a, int64_t dim);

// --- matrix multiply (ops_matmul.cpp) ------------------------------------------------
// As torch.matmul: 1-D x 1-D is a dot product; 2-D x 2-D a matrix product; a
// 1-D operand is a row (left) or column (right) vector; N-D operands are
// batches of matrices with broadcast batch dims.
Tensor matmul(const Tensor& a, const Tensor& b);

}  // namespace ag
