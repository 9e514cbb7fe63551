// The scalar type of every tensor element.
//
// float by default (what PyTorch uses for training); the same sources build with
// -DAG_USE_DOUBLE=1 into a double flavor, in which finite-difference gradient
// checks are accurate to ~1e-9 instead of ~1e-3.
#pragma once

namespace ag {

#ifdef AG_USE_DOUBLE
using real = double;
inline constexpr const char* real_name = "double";
#else
using real = float;
inline constexpr const char* real_name = "float";
#endif

}  // namespace ag
