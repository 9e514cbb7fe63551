// exp, tanh and sigmoid for float as plain arithmetic the compiler can vectorize.
//
// glibc's expf and tanhf are calls, one element at a time (tanhf alone was
// half the instructions of rnn_attention_step). These are the classic Cephes
// formulas, written without branches so that a loop over a buffer becomes
// SIMD code. Float only: in the double flavor (gradient checks) they are
// std::exp, std::tanh and the sigmoid on std::exp, which stay the reference
// the tests compare against (tests/test_fast_paths.cpp: exp and sigmoid
// within 2 float ulps, tanh within 3).
#pragma once

#include <bit>
#include <cmath>
#include <cstdint>
#include <type_traits>

#include "core/real.hpp"

namespace ag::fast {

// e^x, float. Range reduction x = n ln2 + r with n = round(x / ln2), |r| <= ln2/2,
// then e^x = 2^n e^r: e^r by Cephes' degree-7 polynomial
//   e^r ~ 1 + r + r^2 (1/2 + r (1/6 + r (1/24 + ...)))   (coefficients fitted, not 1/k!)
// and 2^n written straight into the exponent bits. Relative error < 2 ulp for
// x in [-87.3, 88.3]; below that the result is 0 (e^x would be subnormal, and
// e^-inf must be exactly 0: a masked softmax weight); above it +inf; NaN stays NaN.
inline float exp_float(float x) {
  const float max_x = 88.3762626647949f, min_x = -87.3365447504f;
  float xc = x < min_x ? min_x : x;  // (ternaries, not fmin/fmax: they vectorize)
  xc = xc > max_x ? max_x : xc;
  // n = round(x log2(e)): adding and subtracting 1.5 * 2^23 rounds to an integer.
  const float round_magic = 12582912.0f;
  const float n = (xc * 1.44269504088896341f + round_magic) - round_magic;
  // r = x - n ln2, ln2 in two parts so that n * ln2_hi is exact.
  const float r = (xc - n * 0.693359375f) - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  // 2^n: n + 127 in the exponent field (n is in -126..127 here).
  const float two_n = std::bit_cast<float>((static_cast<int32_t>(n) + 127) << 23);
  float y = p * two_n;
  y = x < min_x ? 0.0f : y;
  y = x > max_x ? INFINITY : y;
  return x != x ? x : y;  // NaN in, NaN out
}

// tanh(x), float: Eigen's rational approximation (the one behind its and
// XLA's float tanh), odd polynomials of degree 13 over 6,
//   tanh x ~ x P(x^2) / Q(x^2)       for |x| <= 7.9053 (past it tanh rounds to +-1),
// and tanh x = x below |x| < 0.0004, where that is exact in float. No exp, one
// division: about a third of the work of 1 - 2 / (e^2x + 1).
inline float tanh_float(float x) {
  const float clamp = 7.90531110763549805f;
  float c = x > clamp ? clamp : x;
  c = c < -clamp ? -clamp : c;
  const float x2 = c * c;
  float p = -2.76076847742355e-16f;
  p = p * x2 + 2.00018790482477e-13f;
  p = p * x2 - 8.60467152213735e-11f;
  p = p * x2 + 5.12229709037114e-08f;
  p = p * x2 + 1.48572235717979e-05f;
  p = p * x2 + 6.37261928875436e-04f;
  p = p * x2 + 4.89352455891786e-03f;
  float q = 1.19825839466702e-06f;
  q = q * x2 + 1.18534705686654e-04f;
  q = q * x2 + 2.26843463243900e-03f;
  q = q * x2 + 4.89352518554385e-03f;
  const float y = std::fabs(x) < 0.0004f ? x : c * p / q;
  return x != x ? x : y;  // NaN in, NaN out
}

// sigmoid(x) = 1 / (1 + e^-x), float, on exp_float: no branch, so it
// vectorizes. Large |x| needs no care: for x < -88.4, e^-x = inf gives exactly
// 0, for x > 87.3, e^-x = 0 gives 1. Within 2 ulp of the exact value
// (tests/test_fast_paths.cpp measures it). NaN stays NaN.
inline float sigmoid_float(float x) { return 1.0f / (1.0f + exp_float(-x)); }

// The engine's exp, tanh and sigmoid: the float versions above, or std:: for double.
inline real exp(real x) {
  if constexpr (std::is_same_v<real, float>)
    return exp_float(x);
  else
    return std::exp(x);
}
inline real tanh(real x) {
  if constexpr (std::is_same_v<real, float>)
    return tanh_float(x);
  else
    return std::tanh(x);
}
inline real sigmoid(real x) {
  if constexpr (std::is_same_v<real, float>)
    return sigmoid_float(x);
  else  // written so that no exp overflows for large |x|
    return x >= 0 ? 1 / (1 + std::exp(-x)) : std::exp(x) / (1 + std::exp(x));
}

}  // namespace ag::fast
