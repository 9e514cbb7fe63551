// Tensor: a shape plus a dense, contiguous, row-major buffer of ag::real.
//
// A Tensor is a cheap handle (a shared pointer) to a TensorImpl; copying a
// Tensor shares the data, like `b = a` in Python. There are no strided views:
// every op that rearranges elements (transpose, permute, narrow) makes a new
// buffer, so the numbers you see in the debugger (`p t.impl_->data`) are exactly
// the tensor's elements in row-major order.
//
// Of autograd, core/ knows only the fields a tensor carries for it: `grad`,
// `grad_fn`, and the flags next to them. The member functions that follow grad
// mode (backward, in-place updates) are declared here and defined in
// autograd/engine.cpp and autograd/inplace.cpp.
#pragma once

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "core/allocator.hpp"
#include "core/real.hpp"
#include "core/shape.hpp"

namespace ag {

struct Node;  // autograd/node.hpp: the op that produced a tensor

// std::allocator, except that resize(n) leaves new numbers uninitialised
// instead of zeroing them (almost every kernel overwrites its whole output,
// and zeroing a GEMM's output first would cost a pass over its memory), and
// that memory comes from allocate_buffer.
template <typename T>
struct UninitializedAllocator : std::allocator<T> {
  template <typename U>
  struct rebind {
    using other = UninitializedAllocator<U>;
  };
  UninitializedAllocator() = default;
  template <typename U>
  UninitializedAllocator(const UninitializedAllocator<U>&) noexcept {}
  T* allocate(size_t n) { return static_cast<T*>(allocate_buffer(n * sizeof(T))); }
  void deallocate(T* p, size_t n) noexcept { free_buffer(p, n * sizeof(T)); }
  template <typename U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;  // default-initialisation: no value written
  }
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

// A tensor's elements. In gdb: `p t.impl_->data` prints them all.
using Storage = std::vector<real, UninitializedAllocator<real>>;

struct TensorImpl {
  Storage data;  // numel() elements, row-major
  Shape shape;
  std::string name;  // optional; shown by printing, errors and to_dot

  // The fields autograd reads and writes.
  bool requires_grad = false;
  bool retains_grad = false;         // keep .grad on a non-leaf (retain_grad())
  uint32_t version = 0;              // bumped by every in-place change
  std::shared_ptr<TensorImpl> grad;  // d(root)/d(this), same shape, or null
  std::shared_ptr<Node> grad_fn;     // the op that made this tensor, null for leaves
};

// A new, empty TensorImpl (no elements, shape ()), from allocate_buffer.
std::shared_ptr<TensorImpl> make_tensor_impl();

class Tensor {
 public:
  Tensor() = default;  // an undefined tensor (no impl), like None
  // Takes exactly a shared_ptr (a template, so no conversion reaches it): a
  // literal 0 must not become a null impl, or index_select(a, 0, {0}) would be
  // ambiguous between the index-list and the Tensor overload.
  template <typename Impl>
    requires std::same_as<Impl, std::shared_ptr<TensorImpl>>
  explicit Tensor(Impl impl) : impl_(std::move(impl)) {}

  // A new tensor of this shape with UNINITIALISED elements (like torch.empty):
  // the start of kernel outputs that write every element. Use ag::zeros when
  // the values are read or accumulated into. An invalid shape (core/shape.hpp)
  // or memory that cannot be allocated is an ag::Error naming `op` (the
  // function that makes the tensor), the shape and the bytes asked for.
  static Tensor empty(Shape shape, const char* op = "empty");

  bool defined() const { return impl_ != nullptr; }

  // --- shape -------------------------------------------------------------------
  const Shape& shape() const { return get().shape; }
  int64_t dim() const { return static_cast<int64_t>(get().shape.size()); }
  int64_t numel() const { return static_cast<int64_t>(get().data.size()); }
  int64_t size(int64_t dim) const;  // negative dims count from the end

  // --- elements ----------------------------------------------------------------
  real* data() { return get().data.data(); }
  const real* data() const { return get().data.data(); }
  real item() const;                                    // the value of a 1-element tensor
  real at(std::initializer_list<int64_t> index) const;  // t.at({i, j}), bounds-checked
  std::vector<real> to_vector() const { return {get().data.begin(), get().data.end()}; }

  // A copy of data, shape and name. As torch.clone, the copy is recorded
  // (CloneBackward): gradients flow back through it to this tensor. Defined in
  // autograd/ops_shape.cpp.
  Tensor clone() const;
  // The same copy outside any graph: requires_grad false, no grad_fn.
  Tensor detach() const;

  const std::string& name() const { return get().name; }
  Tensor& set_name(std::string name);

  // --- autograd fields -----------------------------------------------------------
  bool requires_grad() const { return get().requires_grad; }
  Tensor& requires_grad_(bool on = true);             // only on leaves, like PyTorch
  // The gradient: undefined until a backward reaches it, then one tensor that
  // every later backward() adds into in place (as in PyTorch), so a handle
  // taken earlier sees the sum. set_grad(t) makes t that tensor; set_grad(Tensor())
  // (zero_grad) clears it, and a handle taken before keeps its old values.
  Tensor grad() const { return Tensor(get().grad); }
  void set_grad(const Tensor& grad);  // shape-checked; undefined clears it
  const std::shared_ptr<Node>& grad_fn() const { return get().grad_fn; }
  bool is_leaf() const { return get().grad_fn == nullptr; }
  uint32_t version() const { return get().version; }

  // Defined in autograd/engine.cpp. On a 1-element tensor the upstream
  // gradient defaults to 1; otherwise pass one of the tensor's shape.
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false) const;
  void retain_grad();  // keep .grad of this non-leaf after backward

  // In-place updates, defined in autograd/inplace.cpp. Refused on a tensor that
  // requires grad unless grad mode is off (NoGradGuard), as optimizers run.
  Tensor& fill_(real value);
  Tensor& zero_();
  Tensor& add_(const Tensor& other, real alpha = 1);  // this += alpha * other (same shape)
  Tensor& mul_(real factor);
  Tensor& copy_(const Tensor& source);  // same shape

  // --- identity ----------------------------------------------------------------
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  long use_count() const { return impl_.use_count(); }
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }

 private:
  // The impl, or an ag::Error when this handle is undefined (Tensor()), so a
  // forgotten initialisation is a clear message instead of a segfault.
  TensorImpl& get() const {
    if (!impl_) throw_undefined();
    return *impl_;
  }
  [[noreturn]] static void throw_undefined();
  [[noreturn]] static void throw_cannot_allocate(const char* op, const Shape& shape);

  std::shared_ptr<TensorImpl> impl_;
};

// A short description for error messages: "'W' (2,3)" or "(2,3)".
std::string describe(const Tensor& t);

// Throws "op: the <what> is an undefined tensor (...)" for an undefined
// handle: the check every public function makes at its entry, so the message
// names the function called.
void check_defined(const Tensor& t, const char* op, const char* what = "input");

}  // namespace ag
