// gradcheck: compares backward()'s gradients with finite differences.
//
// For f(inputs) -> output and a random upstream gradient v (fixed seed), the
// analytic gradient of L = sum(v * f(x)) comes from one backward(); the numeric
// one perturbs each input element in turn by +-eps (central differences:
// dL/dx_j ~ (L(x + eps e_j) - L(x - eps e_j)) / 2 eps, error O(eps^2)). Since v
// is random, this tests every entry of the Jacobian with probability 1.
//
// Use the double flavor (ag::real = double): in float, the rounding error of
// L(x +- eps) swamps the difference for any eps.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "core/tensor.hpp"

namespace ag {

struct GradcheckOptions {
  double eps = 1e-6;   // finite-difference step
  double rtol = 1e-6;  // pass when |analytic - numeric| <= atol + rtol * |numeric|
  double atol = 1e-8;
  uint64_t seed = 0;  // for the upstream gradient v
};

struct GradcheckResult {
  bool ok = true;
  // The worst entry over all inputs that require grad (largest excess over the
  // tolerance), described for a human.
  size_t input = 0;        // which input
  int64_t flat_index = 0;  // which element of it
  double analytic = 0, numeric = 0;
  std::string message;  // "input 1 'W' (2,3), element [1,0]: analytic 0.5 vs numeric 0.49"
  explicit operator bool() const { return ok; }
};

using GradcheckFunction = std::function<Tensor(const std::vector<Tensor>&)>;

// Checks the gradient of f with respect to every input that requires grad.
// The inputs are not modified and their .grad is left as it was.
GradcheckResult gradcheck(const GradcheckFunction& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace ag
