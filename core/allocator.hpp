// Where the engine's memory comes from (core/allocator.cpp): tensor buffers,
// shapes, graph nodes and the lists they keep. allocate_buffer(bytes) and
// free_buffer(p, bytes) (the same bytes):
//   under 1 KiB       per-thread free lists, one per 16-byte size (16-byte aligned)
//   1 KiB - 32 MiB    64-byte aligned, reused from a per-thread cache of freed blocks;
//                     from 64 KiB, first cut from chunks given huge pages
//   larger            the system's, 64-byte aligned
// A training step makes and frees the same blocks every iteration, and
// thousands of small ones per graph.
// With AG_PLAIN_ALLOC=1 in the environment (read once, at the engine's first
// allocation), and always under AddressSanitizer, every block goes straight to
// operator new and back to operator delete (64-byte aligned from 1 KiB): the
// plain path, for memory checkers (valgrind, heaptrack) and for comparing.
#pragma once

#include <atomic>
#include <cstddef>

namespace ag {

namespace detail {
// Blocks under 1 KiB: every op makes several (its output's TensorImpl and
// shape, its graph node and the node's list of inputs, backward's list of
// gradients; the buffer of a tensor of a few elements). glibc's per-thread
// cache holds 7 blocks per size, so a graph of thousands of ops, built and
// then freed, falls through to its bins, consolidation and all: half the
// instructions of scalar_ops. Here they come from per-thread free lists, one
// per 16-byte size, carved from 64 KiB chunks (core/allocator.cpp); a freed
// block goes to the front of its list (it holds the pointer to the next), so
// allocating and freeing are a few instructions, inlined here. Chunks are kept
// for the process's life (the lists hold what the busiest graph needed). The
// lists are plain pointers, valid while static tensors are destroyed at exit.
// Off on the plain path (AddressSanitizer must see every free to catch a use
// after it): the first allocation then sets small_limit to 0.
constexpr size_t kSmallLimit = 1024, kGranule = 16;
extern constinit std::atomic<size_t> small_limit;  // kSmallLimit, or 0 on the plain path
struct SmallBlocks {
  void* free[kSmallLimit / kGranule];  // class c: blocks of (c + 1) * 16 bytes
  char* next;                          // the unused rest of the current chunk
  char* end;
};
extern thread_local constinit SmallBlocks small_blocks;
void* allocate_small_from_chunk(size_t size_class);  // the list is empty
void* allocate_large(size_t bytes);
void free_large(void* p, size_t bytes) noexcept;
inline size_t small_class(size_t bytes) { return (bytes - (bytes != 0)) / kGranule; }
}  // namespace detail

inline void* allocate_buffer(size_t bytes) {
  if (bytes < detail::small_limit.load(std::memory_order_relaxed)) {
    const size_t c = detail::small_class(bytes);
    void*& head = detail::small_blocks.free[c];
    if (void* p = head) {
      head = *static_cast<void**>(p);
      return p;
    }
    return detail::allocate_small_from_chunk(c);
  }
  return detail::allocate_large(bytes);
}

inline void free_buffer(void* p, size_t bytes) noexcept {
  if (bytes < detail::small_limit.load(std::memory_order_relaxed)) {
    void*& head = detail::small_blocks.free[detail::small_class(bytes)];
    *static_cast<void**>(p) = head;
    head = p;
    return;
  }
  detail::free_large(p, bytes);
}

// Whether the plain path is on: AG_PLAIN_ALLOC=1, or an AddressSanitizer build.
bool plain_allocation();

// Whether p lies in one of the chunks blocks of 64 KiB and more are cut from
// (core/allocator.cpp; never on the plain path). For tests and memory tools.
bool in_huge_page_chunks(const void* p);

// A standard allocator over allocate_buffer, for the small objects every op
// makes: shapes, tensor impls, graph nodes, their input and gradient lists.
template <typename T>
struct BufferAllocator {
  using value_type = T;
  BufferAllocator() = default;
  template <typename U>
  BufferAllocator(const BufferAllocator<U>&) noexcept {}
  T* allocate(size_t n) { return static_cast<T*>(allocate_buffer(n * sizeof(T))); }
  void deallocate(T* p, size_t n) noexcept { free_buffer(p, n * sizeof(T)); }
  template <typename U>
  bool operator==(const BufferAllocator<U>&) const noexcept {
    return true;
  }
};

}  // namespace ag
