// exp and tanh for float as plain arithmetic the compiler can vectorize.
//
// glibc's expf and tanhf are calls, one element at a time (tanhf alone was
// half the instructions of rnn_attention_step). These are the classic Cephes
// formulas, written without branches so that a loop over a buffer becomes
// SIMD code. Float only: in the double flavor (gradient checks) they are
// std::exp and std::tanh, which stay the reference the tests compare against
// (tests/test_fast_math.cpp: at most a few float ulps apart).
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

// tanh(x), float. Cephes tanhf:
//   |x| <  0.625:  tanh x = x + x^3 P(x^2)        (odd polynomial, no cancellation)
//   |x| >= 0.625:  tanh x = sign(x) (1 - 2 / (e^(2|x|) + 1))
// |x| is capped at 10 first: tanh(10) rounds to 1 in float, and e^20 cannot overflow.
// Both branches are computed and one is selected, so the loop has no branch.
inline float tanh_float(float x) {
  float ax = std::fabs(x);
  ax = ax > 10.0f ? 10.0f : ax;
  const float z = ax * ax;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const float small = p * z * ax + ax;
  const float large = 1.0f - 2.0f / (exp_float(2.0f * ax) + 1.0f);
  const float y = std::copysign(ax < 0.625f ? small : large, x);  // tanh is odd
  return x != x ? x : y;                                          // NaN in, NaN out
}

// The engine's exp and tanh: the float versions above, or std:: for double.
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

}  // namespace ag::fast
