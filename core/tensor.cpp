#include "core/tensor.hpp"

#include <algorithm>
#include <new>
#include <vector>

#include "core/error.hpp"

namespace ag {

std::shared_ptr<TensorImpl> make_tensor_impl() {
  return std::allocate_shared<TensorImpl>(BufferAllocator<TensorImpl>());
}

Tensor Tensor::empty(Shape shape, const char* op) {
  // Every op's output starts here, so check_sizes (which says what is wrong)
  // runs only when this loop finds a negative size or an extent (the product
  // with each 0 counted as 1: the largest stride) past int64.
  int64_t extent = 1;
  bool valid = true, has_zero = false;
  for (int64_t s : shape) {
    has_zero |= s == 0;
    valid &= s >= 0 && !__builtin_mul_overflow(extent, s == 0 ? 1 : s, &extent);
  }
  if (!valid) check_sizes(shape, op);
  auto impl = make_tensor_impl();
  try {
    impl->data = Storage(has_zero ? 0 : static_cast<size_t>(extent));
  } catch (const std::bad_alloc&) {
    throw_cannot_allocate(op, shape);
  } catch (const std::length_error&) {  // more than a vector can hold
    throw_cannot_allocate(op, shape);
  }
  impl->shape = std::move(shape);
  return Tensor(std::move(impl));
}

void Tensor::throw_cannot_allocate(const char* op, const Shape& shape) {
  const uint64_t numel = static_cast<uint64_t>(shape_numel(shape, op));
  uint64_t bytes;
  const std::string asked = __builtin_mul_overflow(numel, uint64_t(sizeof(real)), &bytes)
                                ? fmt::format("{} x {}", numel, sizeof(real))
                                : std::to_string(bytes);
  throw Error(
      fmt::format("{}: cannot allocate {} bytes for a tensor of shape {} ({} elements of "
                  "{} bytes): out of memory",
                  op, asked, shape_str(shape), numel, sizeof(real)));
}

std::string describe(const Tensor& t) {
  if (!t.defined()) return "an undefined tensor";
  if (t.name().empty()) return shape_str(t.shape());
  return fmt::format("'{}' {}", t.name(), shape_str(t.shape()));
}

void check_defined(const Tensor& t, const char* op, const char* what) {
  AG_CHECK(t.defined(),
           "{}: the {} is an undefined tensor (a default-constructed Tensor, or the .grad() of a "
           "tensor no backward() has reached yet)",
           op, what);
}

void Tensor::throw_undefined() {
  throw Error(
      "undefined tensor: this Tensor handle holds nothing (it was default-constructed, or is "
      "the .grad() of a tensor no backward() has reached yet)");
}

int64_t Tensor::size(int64_t d) const {
  AG_CHECK(dim() > 0, "size: {} is 0-dim and has no dim {}", describe(*this), d);
  return impl_->shape[normalize_dim(d, dim(), "size", shape())];
}

real Tensor::item() const {
  AG_CHECK(numel() == 1, "item: only a 1-element tensor has an item; {} has {} elements",
           describe(*this), numel());
  return impl_->data[0];
}

real Tensor::at(std::initializer_list<int64_t> index) const {
  AG_CHECK(static_cast<int64_t>(index.size()) == dim(), "at: {} needs {} indices, got {}",
           describe(*this), dim(), index.size());
  int64_t offset = 0, d = 0;
  for (int64_t i : index) {
    int64_t n = impl_->shape[d];
    AG_CHECK(i >= -n && i < n, "at: index {} is out of range for dim {} of size {} in {}", i, d, n,
             describe(*this));
    offset = offset * n + (i < 0 ? i + n : i);
    ++d;
  }
  return impl_->data[offset];
}

Tensor Tensor::detach() const {
  check_defined(*this, "detach", "tensor");
  const TensorImpl& self = get();
  auto impl = make_tensor_impl();
  impl->data = self.data;
  impl->shape = self.shape;
  impl->name = self.name;
  return Tensor(std::move(impl));
}

Tensor& Tensor::set_name(std::string name) {
  get().name = std::move(name);
  return *this;
}

Tensor& Tensor::requires_grad_(bool on) {
  AG_CHECK(is_leaf() || on,
           "requires_grad_: {} was made by an op; only leaf tensors can stop requiring grad "
           "(use detach() to get a copy outside the graph)",
           describe(*this));
  impl_->requires_grad = on;
  return *this;
}

void Tensor::set_grad(const Tensor& grad) {
  if (grad.defined())
    AG_CHECK(grad.shape() == shape(), "set_grad: gradient of shape {} does not match {}",
             shape_str(grad.shape()), describe(*this));
  get().grad = grad.impl_ptr();
}

}  // namespace ag
