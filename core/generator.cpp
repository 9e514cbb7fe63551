#include "core/generator.hpp"

#include <cmath>
#include <numbers>

#include "core/error.hpp"

namespace ag {

void Generator::manual_seed(uint64_t seed) {
  seed_ = seed;
  engine_.seed(seed);
  has_spare_normal_ = false;
}

double Generator::uniform() {
  // The top 53 bits scaled by 2^-53: every double in [0,1) on a 2^-53 grid.
  return static_cast<double>(engine_() >> 11) * 0x1.0p-53;
}

double Generator::normal() {
  if (has_spare_normal_) {
    has_spare_normal_ = false;
    return spare_normal_;
  }
  // Box-Muller: for u1, u2 uniform in (0,1], r = sqrt(-2 ln u1), theta = 2 pi u2,
  // r cos(theta) and r sin(theta) are two independent standard normals.
  double u1 = 1.0 - uniform();  // (0, 1]: log(0) never happens
  double u2 = uniform();
  double r = std::sqrt(-2.0 * std::log(u1));
  double theta = 2.0 * std::numbers::pi * u2;
  spare_normal_ = r * std::sin(theta);
  has_spare_normal_ = true;
  return r * std::cos(theta);
}

int64_t Generator::randint(int64_t low, int64_t high) {
  AG_CHECK(low < high, "randint: empty range [{}, {})", low, high);
  // In unsigned arithmetic, which wraps instead of overflowing: the range of
  // [INT64_MIN, INT64_MAX) is 2^64 - 1, more than int64 holds.
  const uint64_t range = static_cast<uint64_t>(high) - static_cast<uint64_t>(low);
  // Rejection sampling: drop draws from the incomplete last block so every
  // value in the range is exactly equally likely.
  uint64_t limit = UINT64_MAX - UINT64_MAX % range;
  uint64_t draw;
  do draw = engine_();
  while (draw >= limit);
  return static_cast<int64_t>(static_cast<uint64_t>(low) + draw % range);
}

Generator& default_generator() {
  static Generator generator(0);
  return generator;
}

void manual_seed(uint64_t seed) { default_generator().manual_seed(seed); }

}  // namespace ag
