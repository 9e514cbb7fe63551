#include "layers/basic/activation.hpp"

#include "autograd/ops.hpp"
#include "core/error.hpp"

namespace ag::nn {

Tensor ReLU::forward(const Tensor& x) {
  check_defined(x, "ReLU");
  return relu(x);
}
Tensor Tanh::forward(const Tensor& x) {
  check_defined(x, "Tanh");
  return tanh(x);
}
Tensor Sigmoid::forward(const Tensor& x) {
  check_defined(x, "Sigmoid");
  return sigmoid(x);
}

Tensor Softmax::forward(const Tensor& x) {
  check_defined(x, "Softmax");
  // The seed's "e^i" is a typo for exp(e_i). Computed as exp(e_i - max) /
  // sum_j exp(e_j - max): the same value, and no exp can overflow.
  // [F0.2] a_i = exp(e_i) / sum_j exp(e_j)   along dim
  return softmax(x, dim);
}

std::string Softmax::extra_repr() const { return fmt::format("dim={}", dim); }

}  // namespace ag::nn
