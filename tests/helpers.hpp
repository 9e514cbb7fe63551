// Shared by the test files: closeness checks, gradcheck and error-message
// checks, and the small makers of inputs that several files use.
#pragma once

#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "autograd/attograd.hpp"
#include "layers/framework/module.hpp"

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

// t itself, now requiring grad: leaf(tensor({1, 2})).
inline Tensor leaf(Tensor t) {
  t.requires_grad_();
  return t;
}

// A leaf that requires grad, like a parameter, holding these values: param({1, -2, 3}).
inline Tensor param(const NestedList& values) { return leaf(tensor(values)); }

// 0, 1, ..., numel-1 in the given shape (hand-known contents).
inline Tensor iota(const Shape& shape) {
  std::vector<real> v(static_cast<size_t>(shape_numel(shape)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<real>(i);
  return from_vector(v, shape);
}

// Infinity in ag::real.
inline constexpr real inf = std::numeric_limits<real>::infinity();

// The elements of t in order, as doubles: the `expected` of check_values.
inline std::vector<double> values_of(const Tensor& t) {
  const std::vector<real> v = t.to_vector();
  return {v.begin(), v.end()};
}

// The names of a module's parameters, in named_parameters() order.
inline std::vector<std::string> names_of(const nn::Module& m) {
  std::vector<std::string> names;
  for (const auto& [name, t] : m.named_parameters()) names.push_back(name);
  return names;
}

// Turns anomaly detection on for one scope and always off again, even when a
// check fails or an exception escapes the test.
struct AnomalyMode {
  AnomalyMode() { set_detect_anomaly(true); }
  ~AnomalyMode() { set_detect_anomaly(false); }
  AnomalyMode(const AnomalyMode&) = delete;
  AnomalyMode& operator=(const AnomalyMode&) = delete;
};

// A stored (rows, stride) row-major matrix of multiples of 1/8 in [-1.375,
// 1.375], for GEMM tests: every product and every sum of up to a few thousand
// of them is exact in float, in any order. Rows repeat every 23 (no power of
// two), so a kernel that read another block's rows would get other numbers.
inline std::vector<real> eighths_matrix(int64_t rows, int64_t stride, int64_t offset) {
  std::vector<real> v(static_cast<size_t>(rows * stride));
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < stride; ++j)
      v[static_cast<size_t>(i * stride + j)] = real((7 * i + 5 * j + offset) % 23 - 11) / 8;
  return v;
}

// Sets one of core/blas.hpp's choices of a GEMM's form (set_small_nt_via_tt,
// set_small_kernel_pieces: -1 by the core, 0 off, 1 on) for one scope, and
// always back to -1 after it.
struct GemmFormSetting {
  GemmFormSetting(void (*set)(int), int setting) : set(set) { set(setting); }
  ~GemmFormSetting() { set(-1); }
  GemmFormSetting(const GemmFormSetting&) = delete;
  GemmFormSetting& operator=(const GemmFormSetting&) = delete;
  void (*set)(int);
};

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

// The message a bad call raises in one mode (reference or fast), or "(no error)".
inline std::string error_in(bool reference, const std::function<void()>& call) {
  ReferenceModeGuard mode(reference);
  try {
    call();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// A bad call raises the same message in the fast and the reference mode, and
// it contains every fragment.
inline void check_same_error(const std::function<void()>& call,
                             const std::vector<std::string>& fragments) {
  const std::string fast = error_in(false, call), reference = error_in(true, call);
  CHECK(fast == reference);
  for (const std::string& fragment : fragments) {
    INFO("message: " << fast);
    CHECK(fast.find(fragment) != std::string::npos);
  }
}

// The low `count` bytes of value, least significant first: how the .npy and
// .safetensors headers store their lengths.
inline std::string little_endian(uint64_t value, int count) {
  std::string out;
  for (int k = 0; k < count; ++k) out += static_cast<char>((value >> (8 * k)) & 0xFF);
  return out;
}

// A file `name` in the system's temporary directory for the tests of `what`,
// with the process id in its name: two test runs at once do not share it.
inline std::string temp_path(const std::string& what, const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          ("attograd_test_" + what + "_" + std::to_string(::getpid()) + "_" + name))
      .string();
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
