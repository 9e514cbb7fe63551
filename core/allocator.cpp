// The engine's allocator (core/allocator.hpp): the per-thread cache of large
// buffers and the chunks the small-block lists are carved from.
#include "core/allocator.hpp"

#include <malloc.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
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

// Blocks of 64 KiB and more (a step's activations and their gradients: 256
// KiB - 1 MiB each in transformer_step, 10 - 20 MiB in all) are new memory to
// every pass over them. In 4 KiB pages that is thousands of pages, more than
// the TLB holds, and each pass missed it page after page. Linux gives its
// transparent huge pages (2 MiB) by default only to memory that asks for them
// (its "madvise" mode), so these blocks come from chunks that ask
// (MADV_HUGEPAGE): transformer_step 0.97 - 0.98 of the time without. A chunk
// is cut into blocks as they are first needed; a freed block goes to the
// lists like any other, and chunks are never given back (a thread takes at
// most 7 chunks, 238 MiB, then blocks come from operator new again). A
// thread that ends leaves its chunks' free blocks to the others (`orphans`).
// Where huge pages are off, a chunk is plain memory. The chunks of every
// thread are in one table, so that a block freed by another thread, or
// after its thread's cache is gone, is known and never passed to operator
// delete.
constexpr int kChunkedMinClass = 16;  // 64 KiB
constexpr size_t kHugePage = size_t(2) << 20;
constexpr size_t kStagger = 4096;  // room for a block's offset (from_chunk)
// 34 MiB: one block of the largest class, 32 MiB, with its offset
constexpr size_t kChunkBytes = (size_t(32) << 20) + kHugePage;
constexpr size_t kMaxChunkBytesPerThread = size_t(256) << 20;
constexpr int kMaxChunks = 256;

struct ChunkTable {
  std::atomic<uintptr_t> start[kMaxChunks], end[kMaxChunks];
  std::atomic<int> count;
};
constinit ChunkTable chunks = {};

bool in_chunk(const void* p) {
  const auto at = reinterpret_cast<uintptr_t>(p);
  const int n = std::min(chunks.count.load(std::memory_order_acquire), kMaxChunks);
  for (int i = 0; i < n; ++i)
    if (at >= chunks.start[i].load(std::memory_order_acquire) &&
        at < chunks.end[i].load(std::memory_order_acquire))
      return true;
  return false;
}

// A new chunk of kChunkBytes, 2 MiB-aligned (a huge page can only back an
// aligned 2 MiB), entered in the table; null when there is no slot or memory.
char* new_chunk() {
  int slot = chunks.count.load(std::memory_order_acquire);
  do {  // the count never passes kMaxChunks, however often a full table is asked
    if (slot >= kMaxChunks) return nullptr;
  } while (!chunks.count.compare_exchange_weak(slot, slot + 1, std::memory_order_acq_rel));
  void* raw = mmap(nullptr, kChunkBytes + kHugePage, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;  // (the slot stays empty)
  const auto first = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t start = (first + kHugePage - 1) & ~(kHugePage - 1);
  // the unaligned head and tail back to the system
  if (start > first) munmap(raw, start - first);
  if (first + kHugePage > start)
    munmap(reinterpret_cast<void*>(start + kChunkBytes), first + kHugePage - start);
#ifdef MADV_HUGEPAGE
  madvise(reinterpret_cast<void*>(start), kChunkBytes, MADV_HUGEPAGE);  // a request, not a must
#endif
  chunks.start[slot].store(start, std::memory_order_release);
  chunks.end[slot].store(start + kChunkBytes, std::memory_order_release);
  return reinterpret_cast<char*>(start);
}

// Free chunk blocks of threads that have ended, for any thread to take before
// it cuts new ones. Made once and never destroyed: threads may end (and
// static tensors be freed) while the program exits.
struct Orphans {
  std::mutex mutex;
  std::vector<void*> free[kMaxClass + 1];
};
Orphans& orphans() {
  static Orphans* const lists = new Orphans;
  return *lists;
}

struct BufferCache {
  std::vector<void*> free[kMaxClass + 1];
  size_t kept = 0;             // bytes in the lists
  char* chunk_next = nullptr;  // the rest of the current chunk
  char* chunk_end = nullptr;
  size_t chunk_bytes = 0;  // taken by this thread
  size_t blocks_cut = 0;
  ~BufferCache();
};
thread_local BufferCache cache;
thread_local bool cache_gone = false;  // set when the thread's cache was destroyed

BufferCache::~BufferCache() {
  Orphans& left = orphans();
  const std::lock_guard<std::mutex> lock(left.mutex);
  for (int c = 0; c <= kMaxClass; ++c)
    for (void* p : free[c]) {
      if (!in_chunk(p)) {
        ::operator delete(p, std::align_val_t(kAlignment));
        continue;
      }
      try {
        left.free[c].push_back(p);
      } catch (...) {  // no room for the pointer: the block stays unused
      }
    }
  // Tensors freed later (static ones) go straight back to the system, or, if
  // they are chunk blocks, stay where they are.
  cache_gone = true;
}

// A block of 2^c bytes (c >= kChunkedMinClass) cut from the thread's chunk,
// or null past the thread's share of chunks or when none can be made.
void* from_chunk(int c) {
  const size_t bytes = size_t(1) << c;
  if (size_t(cache.chunk_end - cache.chunk_next) < bytes + kStagger) {
    if (cache.chunk_bytes + kChunkBytes > kMaxChunkBytesPerThread) return nullptr;
    char* chunk = new_chunk();
    if (chunk == nullptr) return nullptr;
    cache.chunk_bytes += kChunkBytes;
    cache.chunk_next = chunk;  // (what was left of the last one stays unused, untouched)
    cache.chunk_end = chunk + kChunkBytes;
  }
  // Each block starts at its own multiple of 64 bytes past a 4 KiB boundary:
  // blocks all on such boundaries would put the same element of every tensor
  // at the same 4 KiB offset, where a load and an earlier store to another
  // tensor look alike to the CPU (4K aliasing) and the load waits for it
  // (mlp_step took 1.10 of the time).
  const size_t offset = kAlignment * (cache.blocks_cut++ % (kStagger / kAlignment));
  void* p = cache.chunk_next + offset;
  cache.chunk_next += bytes + kStagger;
  return p;
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
  if (c >= kChunkedMinClass) {
    {  // a block an ended thread left
      Orphans& left = orphans();
      const std::lock_guard<std::mutex> lock(left.mutex);
      if (!left.free[c].empty()) {
        void* p = left.free[c].back();
        left.free[c].pop_back();
        return p;
      }
    }
    if (void* p = from_chunk(c)) return p;
  }
  return ::operator new(size_t(1) << c, std::align_val_t(kAlignment));
}

void free_large(void* p, size_t bytes) noexcept {
  if (bytes < kSmallLimit) return ::operator delete(p);  // on the plain path
  const int c = size_class(bytes);
  if (c >= kChunkedMinClass && in_chunk(p)) {  // kept whatever the lists hold: it cannot go back
    if (cache_gone) return;
    try {
      cache.free[c].push_back(p);
      cache.kept += size_t(1) << c;
    } catch (...) {  // no room for the pointer: the block stays unused
    }
    return;
  }
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

bool in_huge_page_chunks(const void* p) { return in_chunk(p); }

}  // namespace ag
