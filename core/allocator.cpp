// The engine's allocator (core/allocator.hpp): the per-thread cache of large
// buffers and the chunks the small-block lists are carved from.
#include "core/allocator.hpp"

#include <malloc.h>

#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

namespace ag {

namespace {
// Memory of freed tensors stays in the process. By default glibc gives it back
// to the kernel at once: a block over 128 KiB comes from mmap and is unmapped
// on free, and the top of the heap is trimmed once 128 KiB of it are free. A
// training step allocates and frees the same activations every iteration, so
// each step would page-fault on every page of them again (in transformer_step
// that was a quarter of the time, spent in the kernel). Blocks up to 32 MiB
// (glibc's maximum) are now reused from the heap, which is trimmed only past
// 512 MiB free. Called by start_once, at the engine's first allocation, not
// before main: a program's malloc is left as it is until it makes a tensor.
void keep_freed_memory() {
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
}

// The plain path (core/allocator.hpp): AG_PLAIN_ALLOC set and not "0" (as
// AG_REFERENCE), and always under AddressSanitizer, which must see every free
// to catch a use after it.
bool plain_from_environment() {
#if defined(__SANITIZE_ADDRESS__)
  return true;
#else
  const char* value = std::getenv("AG_PLAIN_ALLOC");
  return value != nullptr && *value != '\0' && std::strcmp(value, "0") != 0;
#endif
}
bool plain = false;  // set by start_once

// Run by the two slow paths below, allocate_small_from_chunk and
// allocate_large; the engine's very first allocation takes one of them (every
// list and cache is empty then), so the switch is read before any block
// exists, and the plain path never meets a block from the lists.
void start_once() {
  static const bool started = [] {
    plain = plain_from_environment();
    if (plain) detail::small_limit.store(0, std::memory_order_relaxed);
    keep_freed_memory();
    return true;
  }();
  (void)started;
}

// Buffers of freed tensors, kept for the next tensor of the same size class.
// A training step allocates the same activation sizes every iteration, and
// glibc spends real time on blocks of these sizes (searching and splitting
// bins, consolidating fragments: 10% of rnn_attention_step). Size classes are
// the powers of two from 1 KiB to 32 MiB; a thread keeps at most 512 MiB.
// Off on the plain path.
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
  if (plain || bytes < (size_t(1) << kMinClass) || bytes > (size_t(1) << kMaxClass)) return -1;
  int c = kMinClass;
  while ((size_t(1) << c) < bytes) ++c;
  return c;
}

}  // namespace

namespace detail {

thread_local constinit SmallBlocks small_blocks = {};
constinit std::atomic<size_t> small_limit = kSmallLimit;

// Small blocks are carved from chunks of 64 KiB, kept for the process's life.
void* allocate_small_from_chunk(size_t c) {
  start_once();
  if (plain) return ::operator new((c + 1) * kGranule);  // the very first block
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
  start_once();
  if (bytes < kSmallLimit) return ::operator new(bytes);  // on the plain path
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
  if (bytes < kSmallLimit) return ::operator delete(p);  // on the plain path
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

bool plain_allocation() {
  start_once();
  return plain;
}

}  // namespace ag
