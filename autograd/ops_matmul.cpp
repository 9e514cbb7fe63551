// matmul with torch.matmul's rules for 1-D, 2-D and batched operands.
#include <algorithm>

#include "autograd/node.hpp"
#include "autograd/ops.hpp"
#include "core/blas.hpp"
#include "core/kernels.hpp"

namespace ag {

namespace {

// C = A B with A (..., M, K), B (..., K, N), batch dims broadcast:
//   dL/dA = dL/dC B^T      (..., M, N) x (..., N, K)
//   dL/dB = A^T dL/dC      (..., K, M) x (..., M, N)
// then summed over the batch dims each operand was broadcast along.
// The transposes are BLAS flags on the same memory, never copies.
Tensor matmul_nd(const Tensor& a, const Tensor& b) {
  Tensor out = kernel::matmul(a, b, false, false);
  record("MatmulBackward", out, {a, b}, [a, b](const Tensor& g, const Tensor&) {
    Tensor grad_a, grad_b;
    if (a.requires_grad()) grad_a = kernel::sum_to(kernel::matmul(g, b, false, true), a.shape());
    if (b.requires_grad()) {
      if (b.dim() == 2)  // a weight shared by the whole batch: one GEMM over all rows
        grad_b = kernel::matmul_rows_tn(a, g);
      else
        grad_b = kernel::sum_to(kernel::matmul(a, g, true, false), b.shape());
    }
    return Grads{grad_a, grad_b};
  });
  return out;
}

// The operands multiply (inner sizes equal, batch dims broadcast), within
// BLAS's reach, into a product whose shape fits.
void check_matmul(const Tensor& a, const Tensor& b) {
  AG_CHECK(a.defined() && b.defined(), "matmul: the {} operand is an undefined tensor",
           a.defined() ? "second" : "first");
  AG_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: both operands need at least 1 dim, got {} and {}",
           shape_str(a.shape()), shape_str(b.shape()));
  int64_t k_a = a.shape().back();
  int64_t k_b = b.dim() == 1 ? b.shape()[0] : b.shape()[b.dim() - 2];
  AG_CHECK(k_a == k_b, "matmul: cannot multiply {} by {}: inner sizes {} and {} differ",
           describe(a), describe(b), k_a, k_b);
  // BLAS reads a row of a (K) or of b (N) in one call (core/blas.hpp): it must fit its int.
  const int64_t n = b.dim() == 1 ? 1 : b.shape().back();
  AG_CHECK((a.numel() == 0 && b.numel() == 0) || (k_a <= blas_int_max() && n <= blas_int_max()),
           "matmul: cannot multiply {} by {}: a row of {} elements is past BLAS's int limit {} (a "
           "product is split along its rows and its inner sum, not along a row)",
           describe(a), describe(b), std::max(k_a, n), blas_int_max());
  if (a.dim() == 1 || b.dim() == 1) return;  // a vector operand: no batch dims
  Shape batch_a(a.shape().begin(), a.shape().end() - 2);
  Shape batch_b(b.shape().begin(), b.shape().end() - 2);
  Shape batch;
  if (!try_broadcast_shapes(batch_a, batch_b, batch))
    throw Error(broadcast_error("matmul", fmt::format("the batch dims of {}", describe(a)),
                                fmt::format("those of {}", describe(b)), batch_a, batch_b));
  Shape result = batch;  // (..., M, N)
  result.push_back(a.shape()[a.dim() - 2]);
  result.push_back(b.shape().back());
  check_sizes(result, "matmul");
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_matmul(a, b);
  // A 1-D left operand is a row vector (1,K), a 1-D right operand a column
  // vector (K,1); the added dim is removed from the result.
  if (a.dim() == 1 && b.dim() == 1) return sum(mul(a, b));  // dot product
  if (a.dim() == 1) return squeeze(matmul_nd(unsqueeze(a, 0), b), -2);
  if (b.dim() == 1) return squeeze(matmul_nd(a, unsqueeze(b, 1)), -1);
  return matmul_nd(a, b);
}

}  // namespace ag
