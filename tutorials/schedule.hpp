// The learning-rate schedule shared by the chapters that train recurrent
// models (04, 07): Adam's rate falls along a half cosine, large steps early
// and small ones to settle at the end.
#pragma once

#include <cmath>
#include <cstdint>

#include "core/real.hpp"

// The rate at step 1..steps, from base_lr down to base_lr / 20:
//   lr(step) = base_lr (0.05 + 0.95 (1 + cos(pi (step - 1) / steps)) / 2)
inline ag::real cosine_lr(ag::real base_lr, int64_t step, int64_t steps) {
  const double fraction = double(step - 1) / double(steps);
  return base_lr * ag::real(0.05 + 0.95 * 0.5 * (1 + std::cos(M_PI * fraction)));
}
