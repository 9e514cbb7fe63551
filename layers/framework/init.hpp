// Initialisation of parameters, as torch.nn.init. Every draw comes from a
// Generator (the default one unless given), so `ag::manual_seed(s)` before
// building a model gives the same weights on every run and machine.
//
// fan_in and fan_out of a weight of shape (out, in, ...) are in*k and out*k,
// k the product of the remaining dims, as PyTorch computes them.
#pragma once

#include "core/generator.hpp"
#include "core/tensor.hpp"

namespace ag::nn::init {

// The fill happens outside any graph (like PyTorch's torch.no_grad() inside
// its init functions), so parameters that require grad can be initialised.
void uniform_(Tensor& t, real low, real high, Generator& gen = default_generator());
void normal_(Tensor& t, real mean = 0, real std = 1, Generator& gen = default_generator());
void constant_(Tensor& t, real value);
void zeros_(Tensor& t);
void ones_(Tensor& t);

// U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out))     (Glorot & Bengio)
void xavier_uniform_(Tensor& t, real gain = 1, Generator& gen = default_generator());
// U(-b, b) with b = sqrt(6 / ((1 + a^2) fan_in))             (He et al., leaky ReLU slope a)
// With a = sqrt(5) this is b = 1/sqrt(fan_in): PyTorch's default for Linear weights.
void kaiming_uniform_(Tensor& t, real a = 0, Generator& gen = default_generator());

int64_t fan_in(const Tensor& t);
int64_t fan_out(const Tensor& t);

}  // namespace ag::nn::init
