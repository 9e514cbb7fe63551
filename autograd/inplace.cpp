// In-place updates. They change a tensor's values under its users' feet, so
// they are refused on a tensor that requires grad while grad mode is on (the
// graph would silently compute wrong gradients); optimizers update parameters
// inside NoGradGuard. Every change bumps the version, which backward checks.
#include "autograd/grad_mode.hpp"
#include "core/error.hpp"
#include "core/tensor.hpp"

namespace ag {

namespace {

void check_inplace(const Tensor& t, const char* op) {
  AG_CHECK(!(t.requires_grad() && is_grad_enabled()),
           "{}: in-place change of {}, which requires grad; the graph that uses it would compute "
           "wrong gradients. Do it inside ag::NoGradGuard (as optimizers do), or on a detach()ed "
           "copy",
           op, describe(t));
}

void check_same_shape(const Tensor& t, const Tensor& other, const char* op) {
  AG_CHECK(other.defined(),
           "{}: the other operand is an undefined tensor (a .grad() before any backward() "
           "reached it?)",
           op);
  AG_CHECK(t.shape() == other.shape(), "{}: shape {} does not match {}", op,
           shape_str(other.shape()), describe(t));
}

}  // namespace

Tensor& Tensor::fill_(real value) {
  check_inplace(*this, "fill_");
  std::fill(impl_->data.begin(), impl_->data.end(), value);
  ++impl_->version;
  return *this;
}

Tensor& Tensor::zero_() {
  check_inplace(*this, "zero_");
  std::fill(impl_->data.begin(), impl_->data.end(), real(0));
  ++impl_->version;
  return *this;
}

Tensor& Tensor::add_(const Tensor& other, real alpha) {
  check_inplace(*this, "add_");
  check_same_shape(*this, other, "add_");
  real* x = data();
  const real* y = other.data();
  for (int64_t i = 0, n = numel(); i < n; ++i) x[i] += alpha * y[i];
  ++impl_->version;
  return *this;
}

Tensor& Tensor::mul_(real factor) {
  check_inplace(*this, "mul_");
  for (real& x : impl_->data) x *= factor;
  ++impl_->version;
  return *this;
}

Tensor& Tensor::copy_(const Tensor& source) {
  check_inplace(*this, "copy_");
  check_same_shape(*this, source, "copy_");
  impl_->data = source.impl()->data;
  ++impl_->version;
  return *this;
}

}  // namespace ag
