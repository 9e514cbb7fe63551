// Raw kernels: plain loops over contiguous row-major buffers, and batched GEMM.
//
// Nothing here records gradients; autograd/ wraps each kernel in an op that
// does. Kernels leave their inputs untouched and return a new tensor, except
// sum_to and broadcast_to, which return their input itself when it already has
// the requested shape: never change their result in place.
#pragma once

#include <vector>

#include "core/error.hpp"
#include "core/simd.hpp"
#include "core/tensor.hpp"

namespace ag::kernel {

// Strides (in elements) that read `shape` as if it had the broadcast shape
// `target`: a dim of size 1 (or a missing leading dim) gets stride 0, so the
// same element is read again along it.
std::vector<int64_t> broadcast_strides(const Shape& shape, const Shape& target);

// Calls row(out_offset, a_offset, b_offset) for every row of the innermost dim
// of `shape`, with the offsets of that row's first element in the output and in
// two inputs read through broadcast strides sa and sb. An odometer over the
// outer dims, so no division per element.
template <typename Row>
AG_ALWAYS_INLINE void for_each_row(const Shape& shape, const std::vector<int64_t>& sa,
                                   const std::vector<int64_t>& sb, Row row) {
  const int64_t ndim = static_cast<int64_t>(shape.size());
  const int64_t inner = ndim == 0 ? 1 : shape.back();
  const int64_t total = shape_numel(shape);
  if (total == 0) return;
  std::vector<int64_t> index(ndim, 0);
  int64_t offset_a = 0, offset_b = 0;
  for (int64_t out = 0; out < total; out += inner) {
    row(out, offset_a, offset_b);
    for (int64_t d = ndim - 2; d >= 0; --d) {  // advance the odometer
      offset_a += sa[d];
      offset_b += sb[d];
      if (++index[d] < shape[d]) break;
      offset_a -= sa[d] * shape[d];
      offset_b -= sb[d] * shape[d];
      index[d] = 0;
    }
  }
}

// sum_{i < n} term(i) in 8 independent running sums (16 for n >= 16), added
// up at the end. The compiler may not reorder one running sum of floats, so a
// plain `s += x[i]` loop does not vectorize; this one does (inside an
// AG_SIMD_CLONES function). The 8 sums are added pairwise (4 + 4, 2 + 2,
// 1 + 1): three adds deep rather than a chain of eight, which matters for the
// short rows of attention.
template <typename Term>
AG_ALWAYS_INLINE real sum_lanes(int64_t n, Term term) {
  constexpr int64_t lanes = 8;
  if (n < lanes) {  // a short row (a classifier's 3 logits): no lanes to set up and fold
    real sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += term(i);
    return sum;
  }
  // Rows of 16 or more run two sets of 8 sums, so that a row of 64 is a chain
  // of 4 adds per sum rather than 8 (two vectors of 8, or one of 16);
  // the second set is then added into the first.
  real lane[lanes] = {}, lane2[lanes] = {};
  int64_t i = 0;
  for (; i + 2 * lanes <= n; i += 2 * lanes)
    for (int64_t j = 0; j < lanes; ++j) {
      lane[j] += term(i + j);
      lane2[j] += term(i + lanes + j);
    }
  for (int64_t j = 0; j < lanes; ++j) lane[j] += lane2[j];
  for (; i + lanes <= n; i += lanes)
    for (int64_t j = 0; j < lanes; ++j) lane[j] += term(i + j);
  // The fold written out: as a loop over the widths, GCC kept the lanes on the
  // stack, a store and a reload for every add.
  real sum =
      ((lane[0] + lane[4]) + (lane[2] + lane[6])) + ((lane[1] + lane[5]) + (lane[3] + lane[7]));
  for (; i < n; ++i) sum += term(i);
  return sum;
}

// max_{i < n} term(i) (ignoring NaN; `start` for n = 0, or when no term is
// larger), in 8 lanes: a plain running max does not vectorize either.
template <typename Term>
AG_ALWAYS_INLINE real max_lanes(int64_t n, real start, Term term) {
  constexpr int64_t lanes = 8;
  if (n < lanes) {  // a short row, as in sum_lanes
    real max = start;
    for (int64_t i = 0; i < n; ++i) {
      const real x = term(i);
      max = x > max ? x : max;
    }
    return max;
  }
  real lane[lanes];
  for (int64_t j = 0; j < lanes; ++j) lane[j] = start;
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes)
    for (int64_t j = 0; j < lanes; ++j) {
      const real x = term(i + j);
      lane[j] = x > lane[j] ? x : lane[j];
    }
  const auto larger = [](real a, real b) { return b > a ? b : a; };  // a, unless b is larger
  real max = larger(larger(larger(lane[0], lane[4]), larger(lane[2], lane[6])),
                    larger(larger(lane[1], lane[5]), larger(lane[3], lane[7])));
  for (; i < n; ++i) {
    const real x = term(i);
    max = x > max ? x : max;
  }
  return max;
}

// The loops of map and zip over raw buffers, compiled once per instruction
// set (core/simd.hpp). An exception cannot leave such a function (GCC ends
// the program instead), so they only loop: map and zip check and allocate
// first.
template <typename F>
AG_SIMD_CLONES void map_loop(const real* x, real* y, int64_t n, F f) noexcept {
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

// z = f(x, y) over n elements; x_repeats (y_repeats) reads x[0] (y[0]) for every element.
template <typename F>
AG_SIMD_CLONES void zip_loop(const real* x, const real* y, real* z, int64_t n, bool x_repeats,
                             bool y_repeats, F f) noexcept {
  if (!x_repeats && !y_repeats)  // same shape: one flat loop
    for (int64_t i = 0; i < n; ++i) z[i] = f(x[i], y[i]);
  else if (y_repeats)  // tensor with a scalar
    for (int64_t i = 0; i < n; ++i) z[i] = f(x[i], y[0]);
  else
    for (int64_t i = 0; i < n; ++i) z[i] = f(x[0], y[i]);
}

// The general case of zip: walk the output `shape` row by row, reading x and
// y through broadcast strides sa, sb (0 along the dims they are repeated in).
template <typename F>
AG_SIMD_CLONES void zip_rows(const Shape& shape, const std::vector<int64_t>& sa,
                             const std::vector<int64_t>& sb, const real* x, const real* y, real* z,
                             F f) noexcept {
  const int64_t inner = shape.empty() ? 1 : shape.back();
  const int64_t ia = sa.empty() ? 0 : sa.back(), ib = sb.empty() ? 0 : sb.back();
  for_each_row(shape, sa, sb, [&](int64_t o, int64_t oa, int64_t ob) {
    // Fast paths for rows that are contiguous in both inputs, or in one with
    // the other repeated (x + bias): the compiler vectorizes these loops.
    if (ia == 1 && ib == 1)
      for (int64_t i = 0; i < inner; ++i) z[o + i] = f(x[oa + i], y[ob + i]);
    else if (ia == 1 && ib == 0)
      for (int64_t i = 0; i < inner; ++i) z[o + i] = f(x[oa + i], y[ob]);
    else if (ia == 0 && ib == 1)
      for (int64_t i = 0; i < inner; ++i) z[o + i] = f(x[oa], y[ob + i]);
    else
      for (int64_t i = 0; i < inner; ++i) z[o + i] = f(x[oa + i * ia], y[ob + i * ib]);
  });
}

// out[i] = f(a[i])
template <typename F>
Tensor map(const Tensor& a, F f) {
  Tensor out = Tensor::empty(a.shape());
  map_loop(a.data(), out.data(), a.numel(), f);
  return out;
}

// out = f(a, b) elementwise with NumPy broadcasting.
template <typename F>
Tensor zip(const Tensor& a, const Tensor& b, const char* op, F f) {
  AG_CHECK(a.defined() && b.defined(), "{}: the {} operand is an undefined tensor", op,
           a.defined() ? "second" : "first");
  if (a.shape() == b.shape()) {  // fast path: same shape, one flat loop
    Tensor out = Tensor::empty(a.shape(), op);
    zip_loop(a.data(), b.data(), out.data(), a.numel(), false, false, f);
    return out;
  }
  Shape shape;
  if (!try_broadcast_shapes(a.shape(), b.shape(), shape))
    throw Error(broadcast_error(op, describe(a), describe(b), a.shape(), b.shape()));
  Tensor out = Tensor::empty(shape, op);
  const int64_t n = out.numel();
  if (b.numel() == 1 && a.numel() == n) {  // fast path: tensor with a scalar
    zip_loop(a.data(), b.data(), out.data(), n, false, true, f);
    return out;
  }
  if (a.numel() == 1 && b.numel() == n) {
    zip_loop(a.data(), b.data(), out.data(), n, true, false, f);
    return out;
  }
  zip_rows(shape, broadcast_strides(a.shape(), shape), broadcast_strides(b.shape(), shape),
           a.data(), b.data(), out.data(), f);
  return out;
}

// The one function that undoes broadcasting for gradients: sums g (of a
// broadcast shape) over the dims along which a tensor of `shape` was repeated.
// sum_to(g (3,4), (3,1)) sums over dim 1; sum_to(g (2,3,4), (4,)) over dims 0, 1.
Tensor sum_to(const Tensor& g, const Shape& shape);

// sum_to(g * b, shape) without the product as a temporary: the gradient of
// the other operand of a broadcast multiply (mul's backward). b broadcasts to g.
Tensor mul_sum_to(const Tensor& g, const Tensor& b, const Shape& shape);

// Repeats a along broadcast dims to `shape` (the inverse of sum_to). `op` names
// the caller in errors.
Tensor broadcast_to(const Tensor& a, const Shape& shape, const char* op = "broadcast_to");

// --- reductions (dim already normalized) -----------------------------------------
real sum_all(const Tensor& a);
// `op` names the caller in errors (the result of reducing a zero-size tensor
// over its empty dim may be too large to allocate: (0, 2^40) -> (2^40) zeros).
Tensor sum_dim(const Tensor& a, int64_t dim, bool keepdim, const char* op = "sum");
// Max along dim; `argmax` receives the index (along dim) of the first maximum.
Tensor max_dim(const Tensor& a, int64_t dim, bool keepdim, std::vector<int64_t>* argmax,
               const char* op = "max");
Shape reduced_shape(const Shape& shape, int64_t dim, bool keepdim);

// --- moving elements ---------------------------------------------------------------
// out.shape[i] = a.shape[dims[i]]; dims is a validated permutation.
Tensor permute(const Tensor& a, const std::vector<int64_t>& dims);
Tensor cat(const std::vector<Tensor>& parts, int64_t dim);
Tensor narrow(const Tensor& a, int64_t dim, int64_t start, int64_t length);
// Scatters g (the narrow's output gradient) into zeros of `shape` at [start, start+len).
Tensor unnarrow(const Tensor& g, const Shape& shape, int64_t dim, int64_t start);
// sum += unnarrow(g, sum.shape, dim, start), without the zeros: adds g into its stretch.
void unnarrow_add(const Tensor& g, Tensor& sum, int64_t dim, int64_t start);
Tensor index_select(const Tensor& a, int64_t dim, const std::vector<int64_t>& index);
// out = zeros(shape); out[..., index[i], ...] += src[..., i, ...] (index_select's adjoint).
Tensor index_add(const Shape& shape, int64_t dim, const std::vector<int64_t>& index,
                 const Tensor& src);
// The same added into an existing sum: sum[..., index[i], ...] += src[..., i, ...].
void index_add_into(Tensor& sum, int64_t dim, const std::vector<int64_t>& index,
                    const Tensor& src);
Tensor reshape(const Tensor& a, const Shape& shape);  // same elements, new shape
// The same for a temporary (reshape(matmul(...), shape)): when nothing else
// holds it, its buffer moves into the result instead of being copied.
Tensor reshape(Tensor&& a, const Shape& shape);

// --- softmax along dim, max subtracted for stability ---------------------------------
// Each slice along dim by the row rule of core/softmax_row.hpp; a dim other
// than the last is swapped to the end and back (a permuted copy each way).
Tensor softmax(const Tensor& a, int64_t dim);
Tensor log_softmax(const Tensor& a, int64_t dim);
// dL/dx of y = softmax(x) along dim, given g = dL/dy: y * (g - sum_dim(g * y)).
Tensor softmax_backward(const Tensor& g, const Tensor& y, int64_t dim);

// --- matrix multiply -------------------------------------------------------------------
// a: (..., M, K), or (..., K, M) read transposed when transpose_a; b likewise
// (..., K, N) or (..., N, K). Batch dims broadcast. Both at least 2-D.
// When b has no batch dims and a is not transposed, a's batch dims fold into M:
// one GEMM of (batch*M, K) x (K, N) instead of a loop.
Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b);

// Folds every leading dim of a (..., K) and g (..., N) into rows and returns
// a^T g, shape (K, N): the weight gradient of x W summed over the whole batch,
// in one GEMM.
Tensor matmul_rows_tn(const Tensor& a, const Tensor& g);

}  // namespace ag::kernel
