// Finite differences over a module's own parameters (and extra leaf inputs).
//
// ag::gradcheck perturbs copies of the tensors it is given, so it cannot
// reach the parameters a module holds inside. This check perturbs them in
// place instead: for a fixed random v it compares the gradient of
// L = sum(v * f()) from backward() with (L(p + eps) - L(p - eps)) / 2 eps for
// every element of every parameter, with gradcheck's tolerances. Meaningful
// in the double flavor only.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "layers/nn.hpp"

namespace ag::testing {

inline void check_module_gradients(const nn::Module& module, const std::function<Tensor()>& f,
                                   std::vector<Tensor> extra_inputs = {}, double eps = 1e-6,
                                   double rtol = 1e-6, double atol = 1e-8) {
  std::vector<std::pair<std::string, Tensor>> params = module.named_parameters();
  for (size_t i = 0; i < extra_inputs.size(); ++i)
    params.push_back({"input " + std::to_string(i), extra_inputs[i]});
  Generator gen(0);
  Tensor v;
  {
    NoGradGuard no_grad;
    v = randn(f().shape(), gen);
  }
  auto loss = [&] {
    NoGradGuard no_grad;
    Tensor out = f();
    double total = 0;
    for (int64_t i = 0; i < out.numel(); ++i) total += double(out.data()[i]) * v.data()[i];
    return total;
  };
  for (auto& [name, p] : params) p.set_grad(Tensor());
  sum(f() * v).backward();
  double worst_excess = -1;
  std::string worst;
  for (auto& [name, p] : params) {
    const Tensor grad = p.grad();
    for (int64_t j = 0; j < p.numel(); ++j) {
      const real saved = p.data()[j];
      p.data()[j] = static_cast<real>(saved + eps);
      const double plus = loss();
      p.data()[j] = static_cast<real>(saved - eps);
      const double minus = loss();
      p.data()[j] = saved;
      const double numeric = (plus - minus) / (2 * eps);
      const double analytic = grad.defined() ? double(grad.data()[j]) : 0.0;
      const double excess = std::abs(analytic - numeric) - (atol + rtol * std::abs(numeric));
      if (excess > worst_excess) {
        worst_excess = excess;
        worst = name + " element " + std::to_string(j) + ": analytic " + std::to_string(analytic) +
                " vs numeric " + std::to_string(numeric);
      }
    }
  }
  INFO("worst entry: " << worst);
  CHECK(worst_excess <= 0);
}

}  // namespace ag::testing
