// Shared by the test files: closeness checks, gradcheck and error-message checks.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
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

// Empty when f's output moves as each input that requires grad moves; else
// why not. gradcheck perturbs the copies of the inputs it passes to f; a
// function that computes from tensors it captured instead (or drops an input)
// compares a zero gradient with a zero difference quotient and passes
// whatever backward does. The perturbation is random (not a constant shift:
// softmax and layer norm ignore those) and large enough to move a float32
// output.
inline std::string unread_inputs(const GradcheckFunction& f, const std::vector<Tensor>& inputs) {
  NoGradGuard no_grad;
  std::vector<Tensor> xs;
  for (const Tensor& x : inputs) xs.push_back(x.clone());
  const Tensor reference = f(xs).clone();
  Generator gen(1234);
  std::string problems;
  for (size_t i = 0; i < xs.size(); ++i) {
    if (!inputs[i].requires_grad() || xs[i].numel() == 0) continue;
    const Tensor saved = xs[i].clone();
    const Tensor noise = randn(xs[i].shape(), gen);
    for (int64_t j = 0; j < xs[i].numel(); ++j) {
      const double x = saved.data()[j];
      xs[i].data()[j] = static_cast<real>(x + 1e-2 * (1 + std::abs(x)) * double(noise.data()[j]));
    }
    const Tensor moved = f(xs);
    xs[i] = saved;
    bool changed = moved.shape() != reference.shape();
    for (int64_t j = 0; !changed && j < moved.numel(); ++j)
      changed = moved.data()[j] != reference.data()[j];
    if (!changed)
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
