// relu(x W^T + b) as one op: what nn::Sequential runs for a Linear followed by
// a ReLU (layers/framework/module.cpp), and FeedForward for its first layer.
// Reference mode runs the two layers' ops as written; fast mode never stores
// the pre-activation x W^T + b, and with a few input features makes forward
// and backward one pass each. No formula of its own: it is the first half of
// the seeds' feed-forward layer, max(0, x W_1 + b_1) of [F3.3], which
// layers/basic/feed_forward.cpp writes out as the two ops for reference mode.
#include "layers/basic/linear.hpp"

#include <cstring>

#include "autograd/ops.hpp"
#include "core/creation.hpp"
#include "core/kernels.hpp"
#include "core/mode.hpp"
#include "core/simd.hpp"
#include "layers/basic/affine.hpp"

namespace ag::nn {

namespace {
// The fast twin's loops (compiled per instruction set, core/simd.hpp).

// max(v, 0), with a NaN kept (NaN <= 0 is false), as relu (autograd/ops_elementwise.cpp)
AG_ALWAYS_INLINE real relu_of(real v) { return v <= 0 ? real(0) : v; }

// y = relu(x W^T + b) in place of a y that holds x W^T + b already.
AG_SIMD_CLONES void relu_in_place(real* y, int64_t n) noexcept {
  for (int64_t i = 0; i < n; ++i) y[i] = relu_of(y[i]);
}

// d = g where y > 0, else 0 (ReLU's gradient given g = dL/dy), `rows` rows of
// n, and sum (+)= sum_r d_r (the bias gradient) in the same pass over them.
// d may be g: each element of g is read before d's is written. The sums go
// four rows at a time, in linear.cpp's add_row_sums's order.
template <int count>
AG_ALWAYS_INLINE void relu_gradient_rows(const real* g, const real* y, real* d, int64_t n,
                                         real* sum) {
  constexpr int64_t lanes = lanes_of_real;
  int64_t j = 0;
  for (; j + lanes <= n; j += lanes) {
    Lanes dr[count], gr, yr, s;
    for (int r = 0; r < count; ++r) {
      std::memcpy(&gr, g + r * n + j, sizeof gr);
      std::memcpy(&yr, y + r * n + j, sizeof yr);
      dr[r] = yr <= 0 ? Lanes{} : gr;  // a NaN y passes g on, as relu
      std::memcpy(d + r * n + j, &dr[r], sizeof gr);
    }
    std::memcpy(&s, sum + j, sizeof s);
    if constexpr (count == 4)
      s += (dr[0] + dr[1]) + (dr[2] + dr[3]);
    else
      s += dr[0];
    std::memcpy(sum + j, &s, sizeof s);
  }
  for (; j < n; ++j) {
    real dr[count];
    for (int r = 0; r < count; ++r) {
      dr[r] = y[r * n + j] <= 0 ? real(0) : g[r * n + j];
      d[r * n + j] = dr[r];
    }
    if constexpr (count == 4)
      sum[j] += (dr[0] + dr[1]) + (dr[2] + dr[3]);
    else
      sum[j] += dr[0];
  }
}

AG_SIMD_CLONES void relu_gradient(const real* g, const real* y, real* d, int64_t rows, int64_t n,
                                  real* sum, bool adding) noexcept {
  if (!adding)
    for (int64_t j = 0; j < n; ++j) sum[j] = 0;
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) relu_gradient_rows<4>(g + r * n, y + r * n, d + r * n, n, sum);
  for (; r < rows; ++r) relu_gradient_rows<1>(g + r * n, y + r * n, d + r * n, n, sum);
}

// One row of y = relu(b + sum_{p<K} x_p W^T_p), W^T (K, n) by its rows wt:
// the K terms spelled out, so that the loop over the n outputs is the one
// vectorized.
template <int K>
AG_ALWAYS_INLINE void few_inputs_relu_row(const real* x, const real* wt, const real* b, int64_t n,
                                          real* y) {
  for (int64_t j = 0; j < n; ++j) {
    real s = b[j];
    if constexpr (K > 0) s += x[0] * wt[j];
    if constexpr (K > 1) s += x[1] * wt[n + j];
    if constexpr (K > 2) s += x[2] * wt[2 * n + j];
    if constexpr (K > 3) s += x[3] * wt[3 * n + j];
    y[j] = relu_of(s);
  }
}

// y = relu(x W^T + b) for in_features <= few_inputs, row by row: y is written
// once, where a GEMM would first need b copied into every row (two passes over
// y, and a third for the ReLU).
constexpr int64_t few_inputs = 4;
AG_SIMD_CLONES void few_inputs_relu(const real* x, const real* wt, const real* b, int64_t rows,
                                    int64_t k, int64_t n, real* y) noexcept {
  for (int64_t i = 0; i < rows; ++i) {
    const real* xi = x + i * k;
    real* yi = y + i * n;
    switch (k) {
      case 0:
        few_inputs_relu_row<0>(xi, wt, b, n, yi);
        break;
      case 1:
        few_inputs_relu_row<1>(xi, wt, b, n, yi);
        break;
      case 2:
        few_inputs_relu_row<2>(xi, wt, b, n, yi);
        break;
      case 3:
        few_inputs_relu_row<3>(xi, wt, b, n, yi);
        break;
      default:
        few_inputs_relu_row<4>(xi, wt, b, n, yi);
        break;
    }
  }
}

// The weight and bias gradients of few_inputs_relu, in one pass over g and y:
//   d   = g where y > 0, else 0        (rows, n)  ReLU's gradient, never stored
//   db  = sum_i d_i                    (n)
//   dW^T_p = sum_i x_ip d_i, p < K     (K, n)     W's gradient, transposed
// A chunk of columns at a time, all rows streaming past, its K + 1 sums held in
// registers: Lanes (core/simd.hpp). Sums in arrays stay in memory, and each
// row then waits on a store and a load (three times as long, measured).
template <int K>
AG_ALWAYS_INLINE void few_inputs_relu_sums(const real* g, const real* y, const real* x,
                                           int64_t rows, int64_t n, real* db, real* dwt) {
  constexpr int64_t chunk = lanes_of_real;
  int64_t j0 = 0;
  for (; j0 + chunk <= n; j0 += chunk) {
    Lanes sum_d = {}, sum_xd[K > 0 ? K : 1] = {};
    for (int64_t i = 0; i < rows; ++i) {
      Lanes gi, yi;
      std::memcpy(&gi, g + i * n + j0, sizeof gi);
      std::memcpy(&yi, y + i * n + j0, sizeof yi);
      const Lanes d = yi <= 0 ? Lanes{} : gi;  // a NaN y passes g on, as relu
      sum_d += d;
      for (int p = 0; p < K; ++p) sum_xd[p] += x[i * K + p] * d;
    }
    std::memcpy(db + j0, &sum_d, sizeof sum_d);
    for (int p = 0; p < K; ++p) std::memcpy(dwt + p * n + j0, &sum_xd[p], sizeof sum_d);
  }
  for (; j0 < n; ++j0) {  // the last n % chunk columns, one at a time
    real sum_d = 0, sum_xd[K > 0 ? K : 1] = {};
    for (int64_t i = 0; i < rows; ++i) {
      const real d = y[i * n + j0] <= 0 ? real(0) : g[i * n + j0];
      sum_d += d;
      for (int p = 0; p < K; ++p) sum_xd[p] += x[i * K + p] * d;
    }
    db[j0] = sum_d;
    for (int p = 0; p < K; ++p) dwt[p * n + j0] = sum_xd[p];
  }
}

AG_SIMD_CLONES void few_inputs_relu_weight_grads(const real* g, const real* y, const real* x,
                                                 int64_t rows, int64_t k, int64_t n, real* db,
                                                 real* dwt) noexcept {
  switch (k) {
    case 0:
      few_inputs_relu_sums<0>(g, y, x, rows, n, db, dwt);
      break;
    case 1:
      few_inputs_relu_sums<1>(g, y, x, rows, n, db, dwt);
      break;
    case 2:
      few_inputs_relu_sums<2>(g, y, x, rows, n, db, dwt);
      break;
    case 3:
      few_inputs_relu_sums<3>(g, y, x, rows, n, db, dwt);
      break;
    default:
      few_inputs_relu_sums<4>(g, y, x, rows, n, db, dwt);
      break;
  }
}

// dx_i (+)= W d_i, i.e. dx_ip = sum_j d_ij W_jp with d as above, row by row
// (only when x wants a gradient: a toy model's input data does not).
AG_SIMD_CLONES void few_inputs_relu_input_grad(const real* g, const real* y, const real* wt,
                                               int64_t rows, int64_t k, int64_t n, real* d,
                                               real* dx, bool adding) noexcept {
  for (int64_t i = 0; i < rows; ++i) {
    const real* gi = g + i * n;
    const real* yi = y + i * n;
    for (int64_t j = 0; j < n; ++j) d[j] = yi[j] <= 0 ? real(0) : gi[j];
    for (int64_t p = 0; p < k; ++p) {
      const real* w = wt + p * n;
      const real dot = kernel::sum_lanes(n, [&](int64_t j) { return d[j] * w[j]; });
      dx[i * k + p] = adding ? dx[i * k + p] + dot : dot;
    }
  }
}

}  // namespace

Tensor linear_relu(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_linear(x, weight, bias);
  // y = relu(x W^T + b), as written: the two ops of a Linear and a ReLU
  if (reference_mode()) return relu(linear(x, weight, bias));
  // Fast mode: one op, so that x W^T + b is never a tensor of its own. The
  // ReLU is applied where it is computed, and backward masks g by y > 0 (the
  // same as by x W^T + b > 0) on its way into the three gradients.
  const int64_t out_features = weight.shape()[0], in_features = weight.shape()[1];
  const int64_t rows = rows_of(x);
  if (in_features > few_inputs) {
    Tensor y = affine_rows(x, weight, bias, rows);
    relu_in_place(y.data(), y.numel());
    record_linear("LinearReluBackward", y, x, weight, bias,
                  [x, weight, has_bias = bias.defined(), rows](const Tensor& g, const Tensor& y,
                                                               const GradSums& sums) {
                    // d(relu v)/dv = 1 where v > 0, else 0 (a NaN passes g on, as relu),
                    // written over g itself when nothing else holds it; dL/db, its
                    // sum over the rows, in the same pass
                    const int64_t out_features = weight.shape()[0];
                    Tensor masked = sums.output_gradient_or_new(g);
                    bool adding = false;
                    Tensor db = has_bias ? sums.existing_or_new(2, {out_features}, adding)
                                         : Tensor::empty({out_features});
                    relu_gradient(g.data(), y.data(), masked.data(), rows, out_features,
                                  db.data(), adding);
                    Grads grads = affine_grads(masked, x, weight, /*has_bias=*/false, rows, sums);
                    if (has_bias) grads.push_back(db);
                    return grads;
                  });
    return y;
  }
  // A few inputs (a toy classifier's 2-D points): every product is a pass
  // over y, so y is computed row by row in one pass, and backward is one pass.
  Shape y_shape = x.shape();
  y_shape.back() = out_features;
  Tensor y = Tensor::empty(y_shape, "linear");
  Tensor wt = Tensor::empty({in_features, out_features});  // W^T, a few rows of out
  for (int64_t j = 0; j < out_features; ++j)
    for (int64_t p = 0; p < in_features; ++p)
      wt.data()[p * out_features + j] = weight.data()[j * in_features + p];
  const Tensor b = bias.defined() ? bias.detach() : zeros({out_features});
  if (y.numel() > 0)
    few_inputs_relu(x.data(), wt.data(), b.data(), rows, in_features, out_features, y.data());
  record_linear("LinearReluBackward", y, x, weight, bias,
                [x, weight, wt, has_bias = bias.defined(), rows](const Tensor& g, const Tensor& y,
                                                                 const GradSums& sums) {
                  const int64_t out_features = weight.shape()[0], in_features = weight.shape()[1];
                  Grads grads(has_bias ? 3 : 2);
                  if (x.requires_grad()) {
                    bool adding = false;
                    grads[0] = sums.existing_or_new(0, x.shape(), adding);
                    Tensor d = Tensor::empty({out_features});  // one row of ReLU's gradient
                    few_inputs_relu_input_grad(g.data(), y.data(), wt.data(), rows, in_features,
                                               out_features, d.data(), grads[0].data(), adding);
                  }
                  Tensor db = Tensor::empty({out_features});
                  Tensor dwt = Tensor::empty({in_features, out_features});
                  few_inputs_relu_weight_grads(g.data(), y.data(), x.data(), rows, in_features,
                                               out_features, db.data(), dwt.data());
                  bool adding = false;
                  if (weight.requires_grad()) {
                    grads[1] = sums.existing_or_new(1, weight.shape(), adding);
                    real* dw = grads[1].data();
                    for (int64_t j = 0; j < out_features; ++j)
                      for (int64_t p = 0; p < in_features; ++p)
                        dw[j * in_features + p] = (adding ? dw[j * in_features + p] : 0) +
                                                  dwt.data()[p * out_features + j];
                  }
                  if (has_bias) {
                    grads[2] = sums.existing_or_new(2, {out_features}, adding);
                    real* sum = grads[2].data();
                    for (int64_t j = 0; j < out_features; ++j)
                      sum[j] = (adding ? sum[j] : 0) + db.data()[j];
                  }
                  return grads;
                });
  return y;
}

}  // namespace ag::nn
