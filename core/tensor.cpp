#include "core/tensor.hpp"

#include <malloc.h>

#include <algorithm>
#include <new>
#include <vector>

#include "core/error.hpp"

namespace ag {

namespace {
// Memory of freed tensors stays in the process. By default glibc gives it back
// to the kernel at once: a block over 128 KiB comes from mmap and is unmapped
// on free, and the top of the heap is trimmed once 128 KiB of it are free. A
// training step allocates and frees the same activations every iteration, so
// each step would page-fault on every page of them again (in transformer_step
// that was a quarter of the time, spent in the kernel). Blocks up to 32 MiB
// (glibc's maximum) are now reused from the heap, which is trimmed only past
// 512 MiB free.
const bool keep_freed_memory = [] {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  return true;
}();

// Buffers of freed tensors, kept for the next tensor of the same size class.
// A training step allocates the same activation sizes every iteration, and
// glibc spends real time on blocks of these sizes (searching and splitting
// bins, consolidating fragments: 10% of rnn_attention_step). Size classes are
// the powers of two from 1 KiB to 32 MiB; a thread keeps at most 512 MiB.
// Off under AddressSanitizer, which must see every free to catch a use after it.
constexpr size_t kAlignment = 64;              // a cache line, and one AVX-512 register
constexpr int kMinClass = 10, kMaxClass = 25;  // 2^10 = 1 KiB ... 2^25 = 32 MiB
constexpr size_t kMaxKept = size_t(512) << 20;

struct BufferCache {
  std::vector<void*> free[kMaxClass + 1];
  size_t kept = 0;  // bytes in the lists
  ~BufferCache();
};
thread_local BufferCache cache;
thread_local bool cache_gone = false;  // set when the thread's cache was destroyed

BufferCache::~BufferCache() {
  for (auto& list : free)
    for (void* p : list) ::operator delete(p, std::align_val_t(kAlignment));
  cache_gone = true;  // tensors freed later (static ones) go straight back to the system
}

// The size class of a block (its bytes rounded up to a power of two), or -1
// when blocks of that size are not cached.
int size_class(size_t bytes) {
#if defined(__SANITIZE_ADDRESS__)
  (void)bytes;
  return -1;
#else
  if (bytes < (size_t(1) << kMinClass) || bytes > (size_t(1) << kMaxClass)) return -1;
  int c = kMinClass;
  while ((size_t(1) << c) < bytes) ++c;
  return c;
#endif
}

}  // namespace

namespace detail {

thread_local constinit SmallBlocks small_blocks = {};

// Small blocks are carved from chunks of 64 KiB, kept for the process's life.
void* allocate_small_from_chunk(size_t c) {
  constexpr size_t chunk_bytes = size_t(64) << 10;
  SmallBlocks& blocks = small_blocks;
  const size_t size = (c + 1) * kGranule;
  if (size_t(blocks.end - blocks.next) < size) {
    blocks.next = static_cast<char*>(::operator new(chunk_bytes, std::align_val_t(kAlignment)));
    blocks.end = blocks.next + chunk_bytes;
  }
  void* p = blocks.next;
  blocks.next += size;
  return p;
}

void* allocate_large(size_t bytes) {
  if (bytes < kSmallLimit) return ::operator new(bytes);  // under AddressSanitizer
  const int c = size_class(bytes);
  if (c < 0 || cache_gone) {
    // nothrow, then std::bad_alloc: AddressSanitizer's throwing new ends the
    // program on a huge request instead of throwing (Tensor::empty turns
    // bad_alloc into an ag::Error).
    void* p = ::operator new(bytes, std::align_val_t(kAlignment), std::nothrow);
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
  std::vector<void*>& list = cache.free[c];
  if (!list.empty()) {
    void* p = list.back();
    list.pop_back();
    cache.kept -= size_t(1) << c;
    return p;
  }
  return ::operator new(size_t(1) << c, std::align_val_t(kAlignment));
}

void free_large(void* p, size_t bytes) noexcept {
  if (bytes < kSmallLimit) return ::operator delete(p);  // under AddressSanitizer
  const int c = size_class(bytes);
  if (c >= 0 && !cache_gone && cache.kept + (size_t(1) << c) <= kMaxKept) {
    try {
      cache.free[c].push_back(p);
      cache.kept += size_t(1) << c;
      return;
    } catch (...) {  // no room for the pointer: give the block back instead
    }
  }
  ::operator delete(p, std::align_val_t(kAlignment));
}

}  // namespace detail

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
