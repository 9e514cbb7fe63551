// Conv1d, forward and backward side by side: the formula as loops (reference
// mode), and the same through GEMMs over the unfolded input (fast mode).
//
//   y[b,o,t] = bias[o] + sum_c sum_k W[o,c,k] * x[b, c, t*S + k*D - P]
//
// Its derivatives, with g[b,o,t] = dL/dy[b,o,t] and i = t*S + k*D - P:
//   dL/dW[o,c,k] = sum_b sum_t g[b,o,t] * x[b,c,i]
//   dL/dx[b,c,i] = sum over every (o,k,t) that read x[b,c,i] of W[o,c,k] * g[b,o,t]
//   dL/dbias[o]  = sum_b sum_t g[b,o,t]
// (No formula ID: the articles name CNN encoders but give no convolution formula.)
#include "layers/basic/conv1d.hpp"

#include <cmath>

#include "autograd/node.hpp"
#include "autograd/ops.hpp"
#include "core/blas.hpp"
#include "core/creation.hpp"
#include "core/error.hpp"
#include "core/mode.hpp"
#include "layers/framework/init.hpp"

namespace ag::nn {

namespace {

// The sizes of one convolution; every loop below reads them.
struct ConvSizes {
  int64_t batch = 0, in_channels = 0, in_steps = 0;  // x (B, C_in, T_in)
  int64_t out_channels = 0, kernel = 0;              // W (C_out, C_in, K)
  int64_t stride = 1, padding = 0, dilation = 1;
  int64_t out_steps = 0;  // T_out = floor((T_in + 2P - D(K-1) - 1) / S) + 1

  // The input step output step t reads with kernel tap k: t*S + k*D - P
  // (outside 0..T_in-1 it is padding, which reads as 0).
  int64_t input_step(int64_t t, int64_t k) const { return t * stride + k * dilation - padding; }
  bool inside(int64_t i) const { return i >= 0 && i < in_steps; }
};

// Checks every argument (x batched or not); `op` is the function the user
// called (conv1d, or Conv1d's forward), which the messages name.
ConvSizes check_conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride,
                       int64_t padding, int64_t dilation, const char* op) {
  AG_CHECK(x.defined() && weight.defined(), "{}: the {} is an undefined tensor", op,
           x.defined() ? "weight" : "input");
  AG_CHECK(weight.dim() == 3, "{}: weight {} must be 3-D (out_channels, in_channels, kernel_size)",
           op, describe(weight));
  AG_CHECK((x.dim() == 3 || x.dim() == 2) && x.size(-2) == weight.size(1),
           "{}: input {} must be (batch, in_channels = {}, time) or (in_channels, time) for "
           "weight {}",
           op, describe(x), weight.size(1), describe(weight));
  AG_CHECK(!bias.defined() || bias.shape() == Shape{weight.size(0)},
           "{}: bias {} must have shape ({}), the out_channels of weight {}", op, describe(bias),
           weight.size(0), describe(weight));
  AG_CHECK(stride >= 1 && padding >= 0 && dilation >= 1,
           "{}: stride {}, padding {} and dilation {} must be >= 1, >= 0 and >= 1", op, stride,
           padding, dilation);
  const int64_t kernel = weight.size(2);
  AG_CHECK(kernel >= 1, "{}: weight {} has a kernel of size 0", op, describe(weight));
  // The kernel spans D(K-1)+1 input steps; it must fit in the padded input at least once.
  const int64_t steps = x.size(-1), span = dilation * (kernel - 1) + 1,
                padded = steps + 2 * padding;
  AG_CHECK(span <= padded,
           "{}: the kernel (kernel_size {}, dilation {}) spans {} steps, more than the padded "
           "input {} has: {} steps + 2 * padding {} = {}",
           op, kernel, dilation, span, describe(x), steps, padding, padded);
  ConvSizes s;
  s.batch = x.dim() == 3 ? x.size(0) : 1;
  s.in_channels = weight.size(1);
  s.in_steps = steps;
  s.out_channels = weight.size(0);
  s.kernel = kernel;
  s.stride = stride;
  s.padding = padding;
  s.dilation = dilation;
  s.out_steps = (padded - span) / stride + 1;
  return s;
}

// --- the reference: the formula as loops ---------------------------------------------------

// y[b,o,t] = bias[o] + sum_c sum_k W[o,c,k] * x[b, c, t*S + k*D - P]
void conv1d_forward_loops(const ConvSizes& s, const real* x, const real* w, const real* bias,
                          real* y) {
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t o = 0; o < s.out_channels; ++o)
      for (int64_t t = 0; t < s.out_steps; ++t) {
        real sum = bias ? bias[o] : 0;
        for (int64_t c = 0; c < s.in_channels; ++c)
          for (int64_t k = 0; k < s.kernel; ++k) {
            const int64_t i = s.input_step(t, k);
            if (s.inside(i))
              sum += w[(o * s.in_channels + c) * s.kernel + k] *
                     x[(b * s.in_channels + c) * s.in_steps + i];
          }
        y[(b * s.out_channels + o) * s.out_steps + t] = sum;
      }
}

// dL/dx[b,c,i] += W[o,c,k] g[b,o,t],  dL/dW[o,c,k] += g[b,o,t] x[b,c,i],  dL/dbias[o] += g[b,o,t]
// for every (b,o,t,c,k) with i = t*S + k*D - P inside the input: the forward's
// loop, each product sending its gradient back to the two factors it read.
// dx, dw, dbias start at zero; a null one is not wanted.
void conv1d_backward_loops(const ConvSizes& s, const real* g, const real* x, const real* w,
                           real* dx, real* dw, real* dbias) {
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t o = 0; o < s.out_channels; ++o)
      for (int64_t t = 0; t < s.out_steps; ++t) {
        const real grad = g[(b * s.out_channels + o) * s.out_steps + t];
        if (dbias) dbias[o] += grad;
        for (int64_t c = 0; c < s.in_channels; ++c)
          for (int64_t k = 0; k < s.kernel; ++k) {
            const int64_t i = s.input_step(t, k);
            if (!s.inside(i)) continue;  // padding: a constant 0, no gradient to send
            const int64_t xi = (b * s.in_channels + c) * s.in_steps + i;
            const int64_t wi = (o * s.in_channels + c) * s.kernel + k;
            if (dx) dx[xi] += w[wi] * grad;
            if (dw) dw[wi] += grad * x[xi];
          }
      }
}

Tensor conv1d_reference(const ConvSizes& s, const Tensor& x, const Tensor& weight,
                        const Tensor& bias) {
  Tensor y = Tensor::empty({s.batch, s.out_channels, s.out_steps});
  conv1d_forward_loops(s, x.data(), weight.data(), bias.defined() ? bias.data() : nullptr,
                       y.data());
  auto backward = [s, x, weight, has_bias = bias.defined()](const Tensor& g, const Tensor&) {
    Tensor dx = x.requires_grad() ? zeros(x.shape()) : Tensor();
    Tensor dw = weight.requires_grad() ? zeros(weight.shape()) : Tensor();
    Tensor dbias = has_bias ? zeros({s.out_channels}) : Tensor();
    conv1d_backward_loops(s, g.data(), x.data(), weight.data(), dx.defined() ? dx.data() : nullptr,
                          dw.defined() ? dw.data() : nullptr,
                          dbias.defined() ? dbias.data() : nullptr);
    return has_bias ? Grads{dx, dw, dbias} : Grads{dx, dw};
  };
  if (bias.defined())
    record("Conv1dBackward", y, {x, weight, bias}, backward);
  else
    record("Conv1dBackward", y, {x, weight}, backward);
  return y;
}

// --- the fast twin: im2col and GEMMs ---------------------------------------------------------
//
// Unfold the input of sequence b into columns, one per output step:
//   columns_b[c*K + k, t] = x[b, c, t*S + k*D - P]      (C_in*K, T_out)
// Then the formula is a matrix product per sequence, W seen as (C_out, C_in*K):
//   y_b = W columns_b + bias                            (C_out, T_out)
// and its derivatives are two more:
//   dL/dW += g_b columns_b^T                            (C_out, C_in*K)
//   dL/dcolumns_b = W^T g_b                             (C_in*K, T_out), folded back onto x

void unfold(const ConvSizes& s, const real* x, real* columns) {
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t c = 0; c < s.in_channels; ++c)
      for (int64_t k = 0; k < s.kernel; ++k) {
        const real* xc = x + (b * s.in_channels + c) * s.in_steps;
        real* row = columns + ((b * s.in_channels + c) * s.kernel + k) * s.out_steps;
        for (int64_t t = 0; t < s.out_steps; ++t) {
          const int64_t i = s.input_step(t, k);
          row[t] = s.inside(i) ? xc[i] : 0;
        }
      }
}

// The adjoint of unfold: every column entry adds back onto the input step it
// was copied from (dx starts at zero).
void fold(const ConvSizes& s, const real* columns, real* dx) {
  for (int64_t b = 0; b < s.batch; ++b)
    for (int64_t c = 0; c < s.in_channels; ++c)
      for (int64_t k = 0; k < s.kernel; ++k) {
        real* dxc = dx + (b * s.in_channels + c) * s.in_steps;
        const real* row = columns + ((b * s.in_channels + c) * s.kernel + k) * s.out_steps;
        for (int64_t t = 0; t < s.out_steps; ++t) {
          const int64_t i = s.input_step(t, k);
          if (s.inside(i)) dxc[i] += row[t];
        }
      }
}

Tensor conv1d_fast(const ConvSizes& s, const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const int64_t rows = s.in_channels * s.kernel;  // C_in*K
  const int64_t y_size = s.out_channels * s.out_steps, columns_size = rows * s.out_steps;
  Tensor columns = Tensor::empty({s.batch, rows, s.out_steps});
  unfold(s, x.data(), columns.data());
  Tensor y = Tensor::empty({s.batch, s.out_channels, s.out_steps});
  real* out = y.data();
  if (bias.defined()) {  // y starts as the bias; the GEMM adds W columns_b to it (beta = 1)
    const real* bias_values = bias.data();
    for (int64_t b = 0; b < s.batch; ++b)
      for (int64_t o = 0; o < s.out_channels; ++o)
        for (int64_t t = 0; t < s.out_steps; ++t)
          out[b * y_size + o * s.out_steps + t] = bias_values[o];
  }
  for (int64_t b = 0; b < s.batch; ++b)
    gemm(false, false, s.out_channels, s.out_steps, rows, 1, weight.data(),
         columns.data() + b * columns_size, bias.defined() ? 1 : 0, out + b * y_size);

  auto backward = [s, x, weight, columns, has_bias = bias.defined(), rows, y_size, columns_size](
                      const Tensor& g, const Tensor&) {
    Tensor dx, dw, dbias;
    if (weight.requires_grad()) {
      // dL/dW = sum_b g_b columns_b^T: the first GEMM writes, the others add (beta = 1)
      dw = Tensor::empty(weight.shape());
      for (int64_t b = 0; b < s.batch; ++b)
        gemm(false, true, s.out_channels, rows, s.out_steps, 1, g.data() + b * y_size,
             columns.data() + b * columns_size, b == 0 ? 0 : 1, dw.data());
      if (s.batch == 0) dw.zero_();
    }
    if (x.requires_grad()) {
      // dL/dcolumns_b = W^T g_b, then folded back onto the steps of x they came from
      Tensor dcolumns = Tensor::empty(columns.shape());
      for (int64_t b = 0; b < s.batch; ++b)
        gemm(true, false, rows, s.out_steps, s.out_channels, 1, weight.data(),
             g.data() + b * y_size, 0, dcolumns.data() + b * columns_size);
      dx = zeros(x.shape());
      fold(s, dcolumns.data(), dx.data());
    }
    if (has_bias) {
      // dL/dbias[o] = sum_b sum_t g[b,o,t]
      dbias = zeros({s.out_channels});
      real* db = dbias.data();
      const real* gd = g.data();
      for (int64_t b = 0; b < s.batch; ++b)
        for (int64_t o = 0; o < s.out_channels; ++o)
          for (int64_t t = 0; t < s.out_steps; ++t) db[o] += gd[b * y_size + o * s.out_steps + t];
    }
    return has_bias ? Grads{dx, dw, dbias} : Grads{dx, dw};
  };
  if (bias.defined())
    record("Conv1dBackward", y, {x, weight, bias}, backward);
  else
    record("Conv1dBackward", y, {x, weight}, backward);
  return y;
}

// conv1d's body, for the function and the module: checks, then one of the two twins.
Tensor conv1d_checked(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride,
                      int64_t padding, int64_t dilation, const char* op) {
  const ConvSizes s = check_conv1d(x, weight, bias, stride, padding, dilation, op);
  // An unbatched sequence (C_in, T_in) is a batch of one (s.batch is 1).
  const Tensor batched = x.dim() == 2 ? unsqueeze(x, 0) : x;
  const Tensor y = reference_mode() ? conv1d_reference(s, batched, weight, bias)
                                    : conv1d_fast(s, batched, weight, bias);
  return x.dim() == 2 ? squeeze(y, 0) : y;
}

}  // namespace

Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias, int64_t stride,
              int64_t padding, int64_t dilation) {
  return conv1d_checked(x, weight, bias, stride, padding, dilation, "conv1d");
}

Conv1d::Conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride,
               int64_t padding, int64_t dilation, bool has_bias)
    : UnaryModule("Conv1d"),
      in_channels(in_channels),
      out_channels(out_channels),
      kernel_size(kernel_size),
      stride(stride),
      padding(padding),
      dilation(dilation) {
  AG_CHECK(in_channels > 0 && out_channels > 0 && kernel_size > 0,
           "Conv1d: in_channels {}, out_channels {} and kernel_size {} must be positive",
           in_channels, out_channels, kernel_size);
  AG_CHECK(stride >= 1 && padding >= 0 && dilation >= 1,
           "Conv1d: stride {}, padding {} and dilation {} must be >= 1, >= 0 and >= 1", stride,
           padding, dilation);
  weight = register_parameter("weight", Tensor::empty({out_channels, in_channels, kernel_size}));
  // fan_in = in_channels * kernel_size: kaiming_uniform_(a = sqrt(5)) gives U(-1/sqrt(fan_in), ..)
  init::kaiming_uniform_(weight, std::sqrt(real(5)));
  if (has_bias) {
    const real bound = 1 / std::sqrt(static_cast<real>(in_channels * kernel_size));
    bias = register_parameter("bias", Tensor::empty({out_channels}));
    init::uniform_(bias, -bound, bound);
  }
}

Tensor Conv1d::forward(const Tensor& x) {
  return conv1d_checked(x, weight, bias, stride, padding, dilation, "Conv1d");
}

std::string Conv1d::extra_repr() const {
  return fmt::format(
      "in_channels={}, out_channels={}, kernel_size={}, stride={}, padding={}, dilation={}, "
      "bias={}",
      in_channels, out_channels, kernel_size, stride, padding, dilation, bias.defined());
}

}  // namespace ag::nn
