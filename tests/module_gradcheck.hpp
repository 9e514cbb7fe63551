// Finite differences over a module's own parameters (and extra leaf inputs).
//
// ag::gradcheck perturbs copies of the tensors it is given, so it cannot
// reach the parameters a module holds inside; ag::gradcheck_in_place perturbs
// them where they are. This runs it with the project's tolerances, after
// checking that f reads every tensor it checks. Meaningful in the double
// flavor only.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include "layers/nn.hpp"
#include "tests/helpers.hpp"

namespace ag::testing {

// Checks the gradient of f() with respect to every parameter of `module` and
// every extra input ("input 0", "input 1", ... in the messages).
//
// Each parameter and extra input must also move f's output when perturbed
// (see unread_tensors), except those whose names end with one of `unread`:
// parameters that f's output does not depend on, by the math (say why where
// you pass them). Their gradient is still compared with the finite
// differences: both must be zero.
inline void check_module_gradients(const nn::Module& module, const std::function<Tensor()>& f,
                                   std::vector<Tensor> extra_inputs = {},
                                   const std::vector<std::string>& unread = {}, double eps = 1e-6,
                                   double rtol = 1e-6, double atol = 1e-8) {
  std::vector<nn::NamedTensor> tensors = module.named_parameters();
  for (size_t i = 0; i < extra_inputs.size(); ++i)
    tensors.push_back({"input " + std::to_string(i), extra_inputs[i]});

  auto expected_unread = [&](const std::string& name) {
    return std::any_of(unread.begin(), unread.end(), [&](const std::string& u) {
      return name.size() >= u.size() && name.compare(name.size() - u.size(), u.size(), u) == 0;
    });
  };
  std::vector<std::string> names;
  std::vector<Tensor> must_be_read;
  for (const auto& [name, t] : tensors) {
    if (expected_unread(name)) continue;
    names.push_back(name);
    must_be_read.push_back(t);
  }
  std::string problems;
  for (size_t k : unread_tensors(f, must_be_read))
    problems += "check_module_gradients: the function does not read " + names[k] + " " +
                describe(must_be_read[k]) +
                ": perturbing it leaves the output unchanged, so its gradient is not checked\n";
  INFO(problems);
  CHECK(problems.empty());

  GradcheckOptions options;
  options.eps = eps;
  options.rtol = rtol;
  options.atol = atol;
  const GradcheckResult result = gradcheck_in_place(f, tensors, options);
  INFO(result.message);
  CHECK(result.ok);
}

}  // namespace ag::testing
