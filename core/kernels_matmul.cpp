// Batched matrix multiply on top of the GEMM wrapper.
#include "core/blas.hpp"
#include "core/kernels.hpp"

namespace ag::kernel {

Tensor matmul(const Tensor& a, const Tensor& b, bool transpose_a, bool transpose_b) {
  const Shape& sa = a.shape();
  const Shape& sb = b.shape();
  const size_t ra = sa.size(), rb = sb.size();
  const int64_t m = transpose_a ? sa[ra - 1] : sa[ra - 2];
  const int64_t k = transpose_a ? sa[ra - 2] : sa[ra - 1];
  const int64_t n = transpose_b ? sb[rb - 2] : sb[rb - 1];
  const Shape batch_a(sa.begin(), sa.end() - 2), batch_b(sb.begin(), sb.end() - 2);

  if (batch_b.empty() && !transpose_a) {
    // (..., M, K) x (K, N): the rows of every batch are one (batch*M, K) matrix.
    Shape shape = batch_a;
    shape.push_back(m);
    shape.push_back(n);
    Tensor out = Tensor::empty(shape, "matmul");
    gemm(false, transpose_b, shape_numel(batch_a) * m, n, k, 1, a.data(), b.data(), 0, out.data());
    return out;
  }

  // General case: one GEMM per batch element, batch dims broadcast.
  Shape batch = broadcast_shapes(batch_a, batch_b, "matmul");
  Shape shape = batch;
  shape.push_back(m);
  shape.push_back(n);
  Tensor out = Tensor::empty(shape, "matmul");
  if (out.numel() == 0) return out;
  // Offsets of each batch's matrix in a and b, in units of whole matrices.
  std::vector<int64_t> step_a = broadcast_strides(batch_a, batch);
  std::vector<int64_t> step_b = broadcast_strides(batch_b, batch);
  const int64_t size_a = m * k, size_b = k * n;
  // for_each_row walks rows of the batch shape; make the batch shape at least
  // 1-D with one "row" element per matrix by appending a dim of size 1.
  Shape walk = batch;
  walk.push_back(1);
  step_a.push_back(0);
  step_b.push_back(0);
  for_each_row(walk, step_a, step_b, [&](int64_t i, int64_t ia, int64_t ib) {
    gemm(transpose_a, transpose_b, m, n, k, 1, a.data() + ia * size_a, b.data() + ib * size_b, 0,
         out.data() + i * m * n);
  });
  return out;
}

Tensor matmul_rows_tn(const Tensor& a, const Tensor& g) {
  const int64_t k = a.shape().back(), n = g.shape().back();
  const int64_t rows = shape_numel(Shape(a.shape().begin(), a.shape().end() - 1));
  Tensor out = Tensor::empty({k, n}, "matmul");
  // (rows, K)^T x (rows, N) = sum over rows of outer products = (K, N)
  gemm(true, false, k, n, rows, 1, a.data(), g.data(), 0, out.data());
  return out;
}

}  // namespace ag::kernel
