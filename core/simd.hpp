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
