// The engine's allocator (core/allocator.cpp) and its plain path: a
// computation gives the same values whichever path its memory takes, and
// AG_PLAIN_ALLOC=1 (read once, at the first allocation, so only a fresh
// process can show it) gives every freed block back at once.
#include <doctest/doctest.h>
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "autograd/attograd.hpp"
#include "core/allocator.hpp"
#include "core/kernels.hpp"
#include "tests/isolated.hpp"

using namespace ag;

namespace {

// What core/allocator.cpp reads: AG_PLAIN_ALLOC set and not "0".
bool plain_requested() {
#if defined(__SANITIZE_ADDRESS__)
  return true;
#else
  const char* value = std::getenv("AG_PLAIN_ALLOC");
  return value != nullptr && *value != '\0' && std::strcmp(value, "0") != 0;
#endif
}

// Bytes glibc's malloc has handed out and not had back (heap and mmap).
size_t malloc_in_use() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

}  // namespace

TEST_CASE("core: allocator: both paths: the values of a computation that reuses freed buffers") {
  // Each round's tensors take the blocks the round before freed (small blocks
  // under 1 KiB, cached size classes above), with new values written in them.
  for (int round = 1; round <= 3; ++round) {
    const real r = static_cast<real>(round);
    Tensor x = full({3000}, r / 2);  // a cached size class
    x.requires_grad_();
    Tensor v = arange(10);  // a small block
    v.requires_grad_();
    // loss = sum x_i^2 + r sum v_i^2 = 3000 (r/2)^2 + 285 r
    Tensor loss = sum(x * x) + sum(v * v) * r;
    loss.backward();
    CHECK(loss.item() == 750 * r * r + 285 * r);
    CHECK(x.grad().to_vector() == std::vector<real>(3000, r));  // 2 x_i
    for (int64_t i = 0; i < 10; ++i) CHECK(v.grad().at({i}) == 2 * r * static_cast<real>(i));
    // (40,30) x (30,20): every element 30 r
    Tensor c = kernel::matmul(ones({40, 30}), full({30, 20}, r), false, false);
    CHECK(kernel::sum_all(c) == 40 * 20 * 30 * r);
  }
}

TEST_CASE(
    "core: allocator: both paths: a freed buffer is kept, or given back with AG_PLAIN_ALLOC=1") {
  CHECK(plain_allocation() == plain_requested());
#if defined(__SANITIZE_ADDRESS__)
  return;  // AddressSanitizer's heap is not glibc's: mallinfo2 does not see it
#endif
  // a size class of its own, below the blocks cut from huge-page chunks: 16 or 32 KiB
  const size_t bytes = 4096 * sizeof(real);
  size_t with_tensor = 0;
  {
    Tensor t = zeros({4096});
    with_tensor = malloc_in_use();
  }
  const size_t after = malloc_in_use();
  INFO("malloc in use with the tensor: ", with_tensor, " bytes, after it: ", after);
  if (plain_allocation())
    CHECK(after + bytes <= with_tensor);  // back to malloc
  else
    CHECK(after + bytes > with_tensor);  // in the cache, for the next tensor of its size
}

TEST_CASE("core: allocator: AG_PLAIN_ALLOC=1 in a fresh process gives the same values") {
  // This test binary again, with the switch on, running the two cases above.
  const ag::testing::FreshRun run =
      ag::testing::run_test_binary("core: allocator: both paths*", {{"AG_PLAIN_ALLOC", "1"}});
  INFO("the fresh process printed:\n", run.printed);
  CHECK(run.exit_status == 0);
  CHECK(run.printed.find(": 2 passed, 0 failed") != std::string::npos);
}

TEST_CASE("core: allocator: blocks of 64 KiB and more come from huge-page chunks, staggered") {
  const bool chunked = !plain_allocation();
  // In a thread of its own, so that its lists start empty whatever ran before.
  std::thread([&] {
    Tensor small = Tensor::empty({1000}), large = Tensor::empty({16384});  // 4000 B, 64 KiB
    CHECK_FALSE(in_huge_page_chunks(small.data()));
    CHECK(in_huge_page_chunks(large.data()) == chunked);
    // Four live blocks of one class (8 MiB, a size no other test keeps): 64-byte
    // aligned, apart, and (from chunks) each at its own offset past a 4 KiB boundary
    const int64_t n = int64_t(8 << 20) / int64_t(sizeof(real));
    std::vector<Tensor> live;
    for (int i = 0; i < 4; ++i) live.push_back(full({n}, real(i)));
    std::vector<uintptr_t> offsets;
    for (int i = 0; i < 4; ++i) {
      const auto at = reinterpret_cast<uintptr_t>(live[i].data());
      CHECK(at % 64 == 0);
      offsets.push_back(at % 4096);
      for (int64_t k = 0; k < n; k += 65536) CHECK(live[i].data()[k] == real(i));
    }
    if (chunked)
      for (int i = 0; i < 4; ++i)
        for (int j = i + 1; j < 4; ++j) CHECK(offsets[i] != offsets[j]);
    // a freed block is the next one handed out for its class (kept: not on the
    // plain path, where blocks go back to operator delete)
    const real* freed = live.back().data();
    live.pop_back();
    if (chunked) CHECK(Tensor::empty({n}).data() == freed);
  }).join();
}

TEST_CASE("core: allocator: chunk blocks freed by another thread, left by an ended one; a share") {
  if (plain_allocation()) return;  // no chunks on the plain path
  // made in a thread, freed here after the thread (and its cache) ended: it
  // joins this thread's lists, never operator delete
  Tensor from_thread;
  std::thread([&] { from_thread = full({32768}, real(7)); }).join();  // 128 KiB
  REQUIRE(in_huge_page_chunks(from_thread.data()));
  const real* block = from_thread.data();
  from_thread = Tensor();
  CHECK(Tensor::empty({32768}).data() == block);
  // a thread's free chunk blocks outlive it: the next thread to need their
  // class takes them (4 MiB: a size no other test keeps)
  const int64_t n = int64_t(4 << 20) / int64_t(sizeof(real));
  const real* left = nullptr;
  std::thread([&] {
    Tensor t = Tensor::empty({n});
    left = t.data();
  }).join();
  std::thread([&] { CHECK(Tensor::empty({n}).data() == left); }).join();
  // a fresh thread takes chunks for up to 238 MiB, then blocks from operator
  // new: blocks of 32 MiB take a chunk each (32 MiB and room for the offsets),
  // seven of them (with fewer than 249 of the 256 chunks taken before)
  int from_chunks = 0;
  std::thread([&] {
    std::vector<Tensor> blocks;
    for (int i = 0; i < 9; ++i) {
      // 32 MiB, never touched
      blocks.push_back(Tensor::empty({int64_t(32 << 20) / int64_t(sizeof(real))}));
      if (in_huge_page_chunks(blocks.back().data())) ++from_chunks;
    }
  }).join();
  CHECK(from_chunks == 7);
}
