// What the .safetensors and .npy readers and writers share: whole files as
// bytes, errors that name the function and the file, and little-endian
// numbers decoded into ag::real.
#pragma once

#include <bit>
#include <cmath>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

#include "core/real.hpp"

namespace ag::file_bytes {

// Tensors are copied to and from files with memcpy, which keeps the machine's
// byte order; both formats store little-endian.
static_assert(std::endian::native == std::endian::little,
              "attograd's file I/O assumes little-endian");

// What errors name: the function called and the file (empty when none).
struct Where {
  const char* op;
  std::string_view file;
};

// Throws ag::Error "op: 'file': problem" (or "op: problem" without a file).
[[noreturn]] void fail(const Where& where, const std::string& problem);

// Text from a file as errors show it: a NUL byte as \0 and other control
// bytes as \xNN, so that the message (a C string) is not cut short at a NUL.
std::string escaped(std::string_view text);

// Both refuse a path with a NUL byte (core/io/atomic_file.hpp: check_path).
std::string read_file(const char* op, const std::string& path);
// Atomically (core/io/atomic_file.hpp): the old file or the new one, never a mix.
void write_file(const char* op, const std::string& path, std::string_view bytes);

// `count` elements stored as `Stored` (float or double) at `src`, converted to
// real. Returns the index of the first element that does not fit (a finite
// double beyond float's range, which would silently become inf), or `count`.
template <typename Stored>
size_t decode(const char* src, size_t count, real* dst) {
  if (count == 0) return 0;  // dst may be null for an empty tensor
  if constexpr (std::is_same_v<Stored, real>) {
    std::memcpy(dst, src, count * sizeof(real));
  } else {
    for (size_t i = 0; i < count; ++i) {
      Stored x;
      std::memcpy(&x, src + i * sizeof(Stored), sizeof(Stored));
      dst[i] = static_cast<real>(x);
      if (std::isfinite(x) && !std::isfinite(dst[i])) return i;
    }
  }
  return count;
}

// The message for an element decode<double>() could not convert.
std::string out_of_range(const char* src, size_t index);

}  // namespace ag::file_bytes
