// gradcheck: compares backward()'s gradients with finite differences.
//
// For f(inputs) -> output and a random upstream gradient v (fixed seed), the
// analytic gradient of L = sum(v * f(x)) comes from one backward(); the numeric
// one perturbs each input element in turn by +-eps (central differences:
// dL/dx_j ~ (L(x + eps e_j) - L(x - eps e_j)) / 2 eps, error O(eps^2)). Since v
// is random, this tests every entry of the Jacobian with probability 1.
//
// Two entries, one loop:
//   gradcheck(f, inputs)            f is passed copies of the inputs, which it
//                                   perturbs; the caller's tensors stay untouched
//   gradcheck_in_place(f, tensors)  f reads the tensors where they are (a
//                                   module's parameters, which no copy can
//                                   reach); each element is perturbed in place
//                                   and put back
//
// Use the double flavor (ag::real = double): in float, the rounding error of
// L(x +- eps) swamps the difference for any eps.
#pragma once

#include <functional>
#include <string>
#include <utility>
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
  // The worst entry over all tensors checked (largest excess over the
  // tolerance), described for a human.
  size_t input = 0;        // which input of gradcheck, or which tensor of gradcheck_in_place
  std::string name;        // "input 1", or the name gradcheck_in_place was given ("fc.weight")
  int64_t flat_index = 0;  // which element of it
  double analytic = 0, numeric = 0;
  // "gradcheck FAILED: worst entry is input 1 'W' (2,3), element [1,0]: analytic 0.5 vs
  // numeric 0.49 (difference 0.01, allowed 4.9e-07)"
  std::string message;
  explicit operator bool() const { return ok; }
};

using GradcheckFunction = std::function<Tensor(const std::vector<Tensor>&)>;

// Checks the gradient of f with respect to every input that requires grad.
// The inputs are not modified and their .grad is left as it was.
GradcheckResult gradcheck(const GradcheckFunction& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

// Checks the gradient of f() with respect to each named tensor, which f reads
// where it is: every tensor must be a leaf that requires grad, such as the
// parameters of a module:
//
//   nn::Linear fc(3, 2);
//   Tensor x = randn({4, 3}, gen);
//   GradcheckResult r = gradcheck_in_place([&] { return fc.forward(x); }, fc.named_parameters());
//
// Each element is moved by +-eps and put back bit for bit (also when f
// throws), and every named tensor's .grad is left as it was. (Other leaves f
// reads that require grad, not named here, get the check's one backward added
// to their .grad, as any backward would.) The message names the worst entry
// by the name given here.
GradcheckResult gradcheck_in_place(const std::function<Tensor()>& f,
                                   const std::vector<std::pair<std::string, Tensor>>& tensors,
                                   const GradcheckOptions& options = {});

}  // namespace ag
