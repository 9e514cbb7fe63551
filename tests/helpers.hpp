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

// Runs ag::gradcheck with the project's tolerance (relative 1e-6) and reports
// the worst entry on failure. Meaningful in the double flavor only.
inline void check_gradients(const GradcheckFunction& f, const std::vector<Tensor>& inputs,
                            GradcheckOptions options = {}) {
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
