#include "core/io/file_bytes.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <memory>

#include "core/error.hpp"
#include "core/io/atomic_file.hpp"

namespace ag::file_bytes {

void fail(const Where& where, const std::string& problem) {
  if (where.file.empty()) throw Error(fmt::format("{}: {}", where.op, problem));
  throw Error(fmt::format("{}: '{}': {}", where.op, where.file, problem));
}

std::string escaped(std::string_view text) {
  std::string out;
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte == 0)
      out += "\\0";
    else if (byte < 0x20 || byte == 0x7F)
      out += fmt::format("\\x{:02x}", byte);
    else
      out += c;
  }
  return out;
}

std::string read_file(const char* op, const std::string& path) {
  check_path(op, path);
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file(std::fopen(path.c_str(), "rb"),
                                                       &std::fclose);
  AG_CHECK(file, "{}: cannot open '{}': {}", op, path, std::strerror(errno));
  std::string bytes;
  char buffer[1 << 16];
  for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, file.get())) > 0;)
    bytes.append(buffer, n);
  AG_CHECK(!std::ferror(file.get()), "{}: cannot read '{}': {}", op, path, std::strerror(errno));
  return bytes;
}

void write_file(const char* op, const std::string& path, std::string_view bytes) {
  write_file_atomically(op, path, bytes);
}

std::string out_of_range(const char* src, size_t index) {
  double x;
  std::memcpy(&x, src + index * sizeof(double), sizeof(double));
  return fmt::format("element {} is {}, beyond the range of {} (the double flavor can load it)",
                     index, x, real_name);
}

}  // namespace ag::file_bytes
