// Conv1d: a 1-D convolution over time, as torch.nn.Conv1d (groups = 1,
// zero padding), on sequences laid out (batch, channels, time).
//
// Seed 000 (sections 2.2 and 3.2.2, step 1) makes the states that sequence
// attention weighs "with an RNN or a CNN": the RNN's states are [F0.5]; a
// CNN's are the outputs of a convolution, one vector per time step, each
// computed from a window of the input around it. nn::SequenceAttention takes
// either (layers/recurrent/sequence_attention.hpp).
//
// With K the kernel size, S the stride, P the padding and D the dilation, each
// output step t reads the K input steps t*S - P, t*S - P + D, ..., t*S - P + (K-1)D
// (a step outside 0..T_in-1 reads zeros: the padding):
//
//   y[b,o,t] = bias[o] + sum_c sum_k W[o,c,k] * x[b, c, t*S + k*D - P]
//
//   x: (B, C_in, T_in)   W: (C_out, C_in, K)   bias: (C_out)   ->   y: (B, C_out, T_out)
//   T_out = floor((T_in + 2P - D(K-1) - 1) / S) + 1
//
// (PyTorch, like every deep-learning library, calls this cross-correlation a
// convolution: the kernel is not flipped.) A sequence model's (B,T,C) is
// transpose(x, 1, 2) away. An unbatched (C_in, T_in) input gives (C_out, T_out).
//
// Two bodies behind conv1d(), in conv1d.cpp: the formula above as nested
// loops, forward and backward (reference mode, AG_REFERENCE=1), and the same
// as GEMMs over an unfolded input, "im2col" (fast mode): every window of the
// input becomes a column, so the whole convolution of one sequence is one
// matrix product W (C_out, C_in*K) x columns (C_in*K, T_out).
#pragma once

#include "layers/framework/module.hpp"

namespace ag::nn {

// torch.nn.functional.conv1d(x, weight, bias, stride, padding, dilation).
// bias may be undefined.
Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
              int64_t stride = 1, int64_t padding = 0, int64_t dilation = 1);

class Conv1d : public UnaryModule {
 public:
  // PyTorch's names, shapes and initialisation: weight (out, in, K) ~
  // kaiming_uniform_(a = sqrt(5)), that is U(-1/sqrt(in*K), 1/sqrt(in*K)), and
  // bias (out) ~ U(-1/sqrt(in*K), 1/sqrt(in*K)).
  Conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, int64_t stride = 1,
         int64_t padding = 0, int64_t dilation = 1, bool bias = true);
  // x (B, in_channels, T) -> (B, out_channels, T_out)
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  int64_t in_channels, out_channels, kernel_size, stride, padding, dilation;
  Tensor weight;  // (out_channels, in_channels, kernel_size)
  Tensor bias;    // (out_channels), undefined when bias = false
};

}  // namespace ag::nn
