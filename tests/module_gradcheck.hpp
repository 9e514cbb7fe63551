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

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "layers/nn.hpp"

namespace ag::testing {

//
// Each parameter and extra input must also move f's output when perturbed
// (see below), except those whose names end with one of `unread`: parameters
// that f's output does not depend on, by the math (say why where you pass
// them). Their gradient is still compared with the finite differences: both
// must be zero.
inline void check_module_gradients(const nn::Module& module, const std::function<Tensor()>& f,
                                   std::vector<Tensor> extra_inputs = {},
                                   const std::vector<std::string>& unread = {}, double eps = 1e-6,
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
  // As check_gradients does for its inputs: a parameter or input that f does
  // not read has a zero gradient and a zero difference quotient, and would
  // pass whatever backward does. Perturb each one (randomly: a constant shift
  // leaves softmax and layer norm unchanged) and require the output to move.
  {
    NoGradGuard no_grad;
    const Tensor reference = f().clone();
    Generator noise_gen(1234);
    for (auto& [name, p] : params) {
      const bool expected_unread = std::any_of(unread.begin(), unread.end(), [&](const auto& u) {
        return name.size() >= u.size() && name.compare(name.size() - u.size(), u.size(), u) == 0;
      });
      if (p.numel() == 0 || expected_unread) continue;
      const Tensor saved = p.clone();
      const Tensor noise = randn(p.shape(), noise_gen);
      for (int64_t j = 0; j < p.numel(); ++j) {
        const double x = saved.data()[j];
        p.data()[j] = static_cast<real>(x + 1e-2 * (1 + std::abs(x)) * double(noise.data()[j]));
      }
      const Tensor moved = f();
      for (int64_t j = 0; j < p.numel(); ++j) p.data()[j] = saved.data()[j];
      bool changed = moved.shape() != reference.shape();
      for (int64_t j = 0; !changed && j < moved.numel(); ++j)
        changed = moved.data()[j] != reference.data()[j];
      const std::string problem = "check_module_gradients: the function does not read " + name +
                                  " " + describe(p) +
                                  ": perturbing it leaves the output unchanged, so its gradient "
                                  "is not checked";
      INFO(problem);
      CHECK(changed);
    }
  }
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
