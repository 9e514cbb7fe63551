// Shared by the test files: closeness checks, gradcheck and error-message checks.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "autograd/attograd.hpp"

namespace ag::testing {

inline constexpr bool is_double = std::is_same_v<real, double>;

// Sets a parameter's values outside any graph, as loading weights does.
inline void set_values(Tensor& param, const Tensor& values) {
  NoGradGuard no_grad;
  param.copy_(values);
}

// Standard normal values that require grad: an input to differentiate.
inline Tensor leaf(const Shape& shape, Generator& gen) {
  Tensor t = randn(shape, gen);
  t.requires_grad_();
  return t;
}
inline Tensor leaf(const Shape& shape, uint64_t seed) {
  Generator gen(seed);
  return leaf(shape, gen);
}

// Tolerance for comparing forward values with hand-computed ones.
inline constexpr double tol = is_double ? 1e-12 : 1e-5;

// Every element of t within tol of the expected values (relative for large ones).
inline void check_values(const Tensor& t, const std::vector<double>& expected,
                         double tolerance = tol) {
  REQUIRE(t.numel() == static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("element " << i << ": got " << double(t.data()[i]) << ", expected " << expected[i]);
    CHECK(std::abs(double(t.data()[i]) - expected[i]) <=
          tolerance * std::max(1.0, std::abs(expected[i])));
  }
}

inline void check_shape(const Tensor& t, const Shape& shape) {
  INFO("shape " << shape_str(t.shape()) << ", expected " << shape_str(shape));
  CHECK(t.shape() == shape);
}

// The indices of the tensors whose perturbation leaves f's output unchanged.
// A finite-difference check on a tensor that f does not read compares a zero
// gradient with a zero difference quotient and passes whatever backward does;
// this finds them first. Each tensor is perturbed in place, randomly (not by a
// constant shift: softmax and layer norm ignore those) and enough to move a
// float32 output, then restored. A tensor without elements has nothing to move.
inline std::vector<size_t> unread_tensors(const std::function<Tensor()>& f,
                                          const std::vector<Tensor>& tensors) {
  NoGradGuard no_grad;
  const Tensor reference = f().clone();
  Generator gen(1234);
  std::vector<size_t> unread;
  for (size_t i = 0; i < tensors.size(); ++i) {
    Tensor t = tensors[i];  // a handle: f reads this data
    if (t.numel() == 0) continue;
    const Tensor saved = t.clone();
    const Tensor noise = randn(t.shape(), gen);
    for (int64_t j = 0; j < t.numel(); ++j) {
      const double x = saved.data()[j];
      t.data()[j] = static_cast<real>(x + 1e-2 * (1 + std::abs(x)) * double(noise.data()[j]));
    }
    // Compared before t is restored: f may return t itself (an identity, dropout in eval).
    bool changed = false;
    try {
      const Tensor moved = f();
      changed = moved.shape() != reference.shape();
      for (int64_t j = 0; !changed && j < moved.numel(); ++j)
        changed = moved.data()[j] != reference.data()[j];
    } catch (...) {
      std::copy(saved.data(), saved.data() + saved.numel(), t.data());  // put back, then report
      throw;
    }
    std::copy(saved.data(), saved.data() + saved.numel(), t.data());
    if (!changed) unread.push_back(i);
  }
  return unread;
}

// Empty when f's output moves as each input that requires grad moves; else
// why not. gradcheck perturbs the copies of the inputs it passes to f; a
// function that computes from tensors it captured instead (or drops an input)
// would pass whatever backward does.
inline std::string unread_inputs(const GradcheckFunction& f, const std::vector<Tensor>& inputs) {
  std::vector<Tensor> xs;
  for (const Tensor& x : inputs) xs.push_back(x.detach());
  std::vector<Tensor> checked;
  std::vector<size_t> input_of_checked;
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].requires_grad()) continue;
    checked.push_back(xs[i]);
    input_of_checked.push_back(i);
  }
  std::string problems;
  for (size_t k : unread_tensors([&] { return f(xs); }, checked)) {
    const size_t i = input_of_checked[k];
    problems += "check_gradients: the function does not read input " + std::to_string(i) + " " +
                describe(inputs[i]) +
                ": perturbing it leaves the output unchanged, so its gradient is not checked "
                "(compute from the tensors f is passed, not from captured ones; a constant "
                "belongs in an input that does not require grad)\n";
  }
  return problems;
}

// Runs ag::gradcheck with the project's tolerance (relative 1e-6) and reports
// the worst entry on failure. Meaningful in the double flavor only. First
// checks that f reads every input it is asked to differentiate.
inline void check_gradients(const GradcheckFunction& f, const std::vector<Tensor>& inputs,
                            GradcheckOptions options = {}) {
  const std::string unread = unread_inputs(f, inputs);
  INFO(unread);
  CHECK(unread.empty());
  GradcheckResult result = gradcheck(f, inputs, options);
  INFO(result.message);
  CHECK(result.ok);
}

// Runs `code`, expects an ag::Error whose message contains every fragment.
template <typename F>
void check_error(F code, const std::vector<std::string>& fragments) {
  try {
    code();
    FAIL("expected an ag::Error containing \"" << fragments.at(0) << "\", got none");
  } catch (const Error& e) {
    std::string message = e.what();
    for (const std::string& fragment : fragments) {
      INFO("message: " << message);
      INFO("expected fragment: " << fragment);
      CHECK(message.find(fragment) != std::string::npos);
    }
  }
}

// Largest |a - b| over the elements of two tensors of the same shape.
inline double max_abs_diff(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  double worst = 0;
  for (int64_t i = 0; i < a.numel(); ++i)
    worst = std::max(worst, std::abs(double(a.data()[i]) - double(b.data()[i])));
  return worst;
}

}  // namespace ag::testing
