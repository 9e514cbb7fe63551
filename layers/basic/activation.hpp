// Activation layers as modules, for nn::Sequential and model summaries: each
// one applies the differentiable op of the same name (autograd/ops.hpp).
// Softmax is the normalisation of every attention score in the seeds [F0.2].
#pragma once

#include "layers/framework/module.hpp"

namespace ag::nn {

class ReLU : public UnaryModule {
 public:
  ReLU() : UnaryModule("ReLU") {}
  Tensor forward(const Tensor& x) override;  // max(x, 0)
};

class Tanh : public UnaryModule {
 public:
  Tanh() : UnaryModule("Tanh") {}
  Tensor forward(const Tensor& x) override;
};

class Sigmoid : public UnaryModule {
 public:
  Sigmoid() : UnaryModule("Sigmoid") {}
  Tensor forward(const Tensor& x) override;  // 1 / (1 + exp(-x))
};

class Softmax : public UnaryModule {
 public:
  explicit Softmax(int64_t dim) : UnaryModule("Softmax"), dim(dim) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  int64_t dim;
};

}  // namespace ag::nn
