// What every attention layer returns: the context and the weights that made
// it, so the weights can be inspected and drawn (the chapters' heat maps).
// Point attention, the scores of seed 001, scaled dot-product and multi-head
// attention all return one.
#pragma once

#include "core/tensor.hpp"

namespace ag::nn {

struct AttentionOutput {
  Tensor context;
  Tensor weights;
};

}  // namespace ag::nn
