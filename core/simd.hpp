// AG_SIMD_CLONES: compile a loop-heavy function once per x86-64 level and pick
// the best copy for the CPU when the program starts (GCC's function
// multiversioning, an ifunc). attograd builds for plain x86-64 so that its
// binaries run anywhere, which limits the vectorizer to 4 floats at a time
// (SSE2); the x86-64-v3 copy (AVX2, FMA) does 8 and the x86-64-v4 copy
// (AVX-512) 16. The plain loops stay as they are: the attribute only tells the
// compiler to build them three times.
//
// Off (an ordinary function) for other compilers and CPUs, and under the
// sanitizers, whose start-up code runs after the ifunc resolvers would.
#pragma once

#include "core/real.hpp"

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && \
    !defined(__SANITIZE_ADDRESS__) && !defined(AG_NO_SIMD_CLONES)
#define AG_SIMD_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define AG_SIMD_CLONES
#endif

// For a helper called from inside such a function: inlined into every copy, so
// that its loops too are compiled for that copy's instruction set (a call would
// run the plain x86-64 version).
#if defined(__GNUC__)
#define AG_ALWAYS_INLINE [[gnu::always_inline]] inline
#else
#define AG_ALWAYS_INLINE inline
#endif

// Lanes: one AVX-512 register of real (16 floats, 8 doubles) as GCC's vector
// type; in the AVX2 and SSE2 copies it is two or four registers. Sums kept in
// a Lanes stay in registers across a loop, where GCC keeps an array of sums in
// memory (a store and a load for every add).
namespace ag {

using Lanes = real __attribute__((vector_size(64)));
constexpr int lanes_of_real = sizeof(Lanes) / sizeof(real);

// The lanes added up, or their largest, folded in halves (a b c d ... ->
// a+c b+d ...): a chain of log2(lanes) shuffles and ops. The max keeps a lane
// unless the other is larger, as max_lanes (core/kernels.hpp) does, and
// expects no NaN in the lanes: a running max updated by x > m ? x : m, as
// max_lanes's, never takes one in. (Vectors go by reference: a 64-byte
// vector passed or returned by value has a different ABI in the copies with
// and without AVX-512.)
static_assert(lanes_of_real == 8 || lanes_of_real == 16, "fold_sum and fold_max fold 8 or 16");
template <typename L = Lanes>  // a template, so that only one branch is compiled
AG_ALWAYS_INLINE void halves_swapped(const L& v, int step, L& out) {
  if constexpr (sizeof(L) / sizeof(real) == 16) {
    if (step == 0)
      out = __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
    if (step == 1)
      out = __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11);
    if (step == 2)
      out = __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
    if (step == 3)
      out = __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14);
  } else {  // 8 doubles
    if (step == 0) out = __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3);
    if (step == 1) out = __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5);
    if (step == 2) out = __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6);
  }
}

constexpr int fold_steps = lanes_of_real == 16 ? 4 : 3;

AG_ALWAYS_INLINE real fold_sum(const Lanes& lanes) {
  Lanes v = lanes, other;
  for (int step = 0; step < fold_steps; ++step) {
    halves_swapped(v, step, other);
    v += other;
  }
  return v[0];
}

AG_ALWAYS_INLINE real fold_max(const Lanes& lanes) {
  Lanes v = lanes, other;
  for (int step = 0; step < fold_steps; ++step) {
    halves_swapped(v, step, other);
    v = other > v ? other : v;
  }
  return v[0];
}

}  // namespace ag
