// Dropout: no formula of the seeds computes it; seed 003 creates one in its
// SelfAttention [F3.5] and never calls it. Inverted dropout, as PyTorch.
#include "layers/basic/dropout.hpp"

#include "core/error.hpp"

#include "autograd/ops.hpp"

namespace ag::nn {

namespace {
void check_probability(real p) {
  AG_CHECK(p >= 0 && p <= 1, "Dropout: probability p must be in [0, 1], got {}", p);
}
}  // namespace

Tensor dropout(const Tensor& x, real p, bool training, Generator& gen) {
  check_defined(x, "dropout");
  check_probability(p);
  if (!training || p == 0) return x;
  // y = x * m / (1 - p),  m_i ~ Bernoulli(1 - p);  dL/dx = g * m / (1 - p)
  // (the mask is a constant of the product, so mul's backward gives exactly that).
  // p = 1 drops everything: the mask is all zeros and there is nothing to scale.
  Tensor mask = Tensor::empty(x.shape());
  const real keep_scale = p < 1 ? 1 / (1 - p) : 0;
  real* m = mask.data();
  for (int64_t i = 0; i < mask.numel(); ++i) m[i] = gen.bernoulli(1 - p) ? keep_scale : 0;
  return mul(x, mask);
}

Dropout::Dropout(real p) : UnaryModule("Dropout"), p(p) { check_probability(p); }

Tensor Dropout::forward(const Tensor& x) {
  check_defined(x, "Dropout");
  return dropout(x, p, is_training());
}

std::string Dropout::extra_repr() const { return fmt::format("p={}", p); }

}  // namespace ag::nn
