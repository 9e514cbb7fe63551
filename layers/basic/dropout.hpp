// Dropout, as torch.nn.Dropout: in training, each element is zeroed with
// probability p and the survivors are scaled by 1/(1-p) ("inverted" dropout),
// so the expected value of every element is unchanged and evaluation needs no
// rescaling; in eval mode it is the identity. The seeds name dropout without
// using it (seed 003's SelfAttention [F3.5] creates one and never calls it).
#pragma once

#include "core/generator.hpp"
#include "layers/framework/module.hpp"

namespace ag::nn {

// The mask is drawn from `gen` (the default generator unless given), so a
// seeded run drops the same elements every time.
Tensor dropout(const Tensor& x, real p, bool training, Generator& gen = default_generator());

class Dropout : public UnaryModule {
 public:
  explicit Dropout(real p = 0.5);
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  real p;
};

}  // namespace ag::nn
