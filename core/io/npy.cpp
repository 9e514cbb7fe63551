#include "core/io/npy.hpp"

#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <type_traits>
#include <vector>

#include "core/error.hpp"
#include "core/io/file_bytes.hpp"

namespace ag {

namespace {

using namespace file_bytes;  // decode, fail, out_of_range, read_file, Where, write_file

constexpr std::string_view magic = "\x93NUMPY";
// Far above any real header (a few dozen bytes a dim), and a bound on the
// shape a hostile file can make us parse.
constexpr uint64_t max_header_bytes = 1 << 20;

constexpr const char* stored_descr = std::is_same_v<real, float> ? "<f4" : "<f8";

// Text from the header as errors show it; cut short, as a hostile file may
// hold a huge one.
std::string show(std::string_view text) {
  return text.size() <= 40 ? file_bytes::escaped(text)
                           : file_bytes::escaped(text.substr(0, 36)) + "...";
}

// What the header says. NumPy reads it with Python's literal parser; the
// subset below is what np.save writes: string keys, string, bool and
// int-tuple values, whitespace, and optional trailing commas.
struct Header {
  std::optional<std::string> descr;
  std::optional<bool> fortran_order;
  std::optional<Shape> shape;
};

class HeaderParser {
 public:
  HeaderParser(std::string_view text, const Where& where) : text_(text), where_(where) {}

  Header parse() {
    Header h;
    skip_whitespace();
    expect('{', "'{' opening the dict");
    for (;;) {
      skip_whitespace();
      if (peek() == '}') break;
      size_t key_at = pos_;
      std::string key = string();
      skip_whitespace();
      expect(':', "':' after a key");
      skip_whitespace();
      if (key == "descr") {
        set(h.descr, string(), key, key_at);
      } else if (key == "fortran_order") {
        set(h.fortran_order, boolean(), key, key_at);
      } else if (key == "shape") {
        set(h.shape, tuple(), key, key_at);
      } else {
        fail(where_, fmt::format("header has an unexpected key '{}'", show(key)));
      }
      skip_whitespace();
      if (peek() != ',') break;
      ++pos_;
    }
    skip_whitespace();
    expect('}', "',' or '}' after a value");
    skip_whitespace();
    if (pos_ != text_.size()) error(pos_, "unexpected text after the dict");
    return h;
  }

 private:
  [[noreturn]] void error(size_t at, const std::string& problem) const {
    fail(where_, fmt::format("header is not a valid dict literal: {} at byte {} of the header",
                             problem, at));
  }

  template <typename T>
  void set(std::optional<T>& field, T value, const std::string& key, size_t at) const {
    if (field) error(at, fmt::format("duplicate key '{}'", key));
    field = std::move(value);
  }

  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void skip_whitespace() {
    while (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r') ++pos_;
  }
  void expect(char c, const char* what) {
    if (peek() != c) error(pos_, fmt::format("expected {}", what));
    ++pos_;
  }

  // 'text' or "text"; np.save never writes escapes, so none are accepted.
  std::string string() {
    char quote = peek();
    if (quote != '\'' && quote != '"') error(pos_, "expected a quoted string");
    size_t start = ++pos_;
    while (pos_ < text_.size() && text_[pos_] != quote) {
      if (text_[pos_] == '\\') error(pos_, "escape sequences are not supported");
      ++pos_;
    }
    if (pos_ >= text_.size()) error(start - 1, "unterminated string");
    return std::string(text_.substr(start, pos_++ - start));
  }

  bool boolean() {
    for (auto [word, value] : {std::pair{std::string_view("True"), true}, {"False", false}})
      if (text_.substr(pos_, word.size()) == word) {
        pos_ += word.size();
        return value;
      }
    error(pos_, "expected True or False");
  }

  // (), (3,), (2, 3) or (2, 3,); "(3)" is the number 3 in Python, not a tuple.
  Shape tuple() {
    expect('(', "a tuple such as (2, 3)");
    Shape shape;
    skip_whitespace();
    bool comma = false;
    while (peek() != ')') {
      shape.push_back(size());
      skip_whitespace();
      comma = peek() == ',';
      if (!comma) break;
      ++pos_;
      skip_whitespace();
    }
    expect(')', "',' or ')' in the shape tuple");
    if (shape.size() == 1 && !comma) error(pos_ - 1, "a 1-element tuple needs a comma: (n,)");
    return shape;
  }

  int64_t size() {
    size_t start = pos_;
    if (peek() == '-') error(pos_, "negative size in the shape");
    int64_t value = 0;
    while (peek() >= '0' && peek() <= '9') {
      if (__builtin_mul_overflow(value, 10, &value) ||
          __builtin_add_overflow(value, peek() - '0', &value))
        error(start, "shape size too large for a 64-bit integer");
      ++pos_;
    }
    if (pos_ == start) error(pos_, "expected a whole number in the shape");
    return value;
  }

  std::string_view text_;
  const Where& where_;
  size_t pos_ = 0;
};

uint64_t read_le(std::string_view bytes, size_t at, int count) {
  uint64_t n = 0;
  for (int k = count - 1; k >= 0; --k) n = (n << 8) | static_cast<unsigned char>(bytes[at + k]);
  return n;
}

Tensor parse(const Where& where, std::string_view bytes) {
  // A prefix of the magic string is a truncated .npy file, not another format.
  if (bytes.substr(0, magic.size()) != magic.substr(0, std::min(magic.size(), bytes.size())))
    fail(where, "not a .npy file: it does not start with \"\\x93NUMPY\"");
  if (bytes.size() < 10)
    fail(where,
         fmt::format("the file has {} bytes, too short for the .npy preamble", bytes.size()));
  int major = static_cast<unsigned char>(bytes[6]), minor = static_cast<unsigned char>(bytes[7]);
  if (major < 1 || major > 3 || minor != 0)
    fail(where, fmt::format("unsupported .npy version {}.{} (attograd reads 1.0, 2.0 and 3.0)",
                            major, minor));
  // Version 1.0 stores the header length in 2 bytes, 2.0 and 3.0 in 4.
  size_t length_bytes = major == 1 ? 2 : 4;
  size_t preamble = 8 + length_bytes;
  if (bytes.size() < preamble)
    fail(where,
         fmt::format("the file has {} bytes, too short for the .npy preamble", bytes.size()));
  uint64_t header_length = read_le(bytes, 8, static_cast<int>(length_bytes));
  if (header_length > max_header_bytes)
    fail(where, fmt::format("header length {} is over the {}-byte limit", header_length,
                            max_header_bytes));
  if (header_length > bytes.size() - preamble)
    fail(where, fmt::format("header length {} is more than the {} bytes that follow it (is the "
                            "file truncated?)",
                            header_length, bytes.size() - preamble));
  Header h = HeaderParser(bytes.substr(preamble, header_length), where).parse();

  if (!h.descr) fail(where, "header has no 'descr' (the element type)");
  if (!h.fortran_order) fail(where, "header has no 'fortran_order'");
  if (!h.shape) fail(where, "header has no 'shape'");
  // '=' is native order and '|' "not applicable"; NumPy reads both as the
  // machine's order, which is little-endian here.
  const std::string& d = *h.descr;
  bool little = d.size() == 3 && (d[0] == '<' || d[0] == '=' || d[0] == '|');
  size_t element_bytes = little && d.substr(1) == "f4" ? 4 : little && d.substr(1) == "f8" ? 8 : 0;
  if (element_bytes == 0)
    fail(where, fmt::format("dtype '{}' is not supported (attograd reads float32 '<f4' and float64 "
                            "'<f8'{})",
                            show(d), d.starts_with('>') ? "; this data is big-endian" : ""));
  if (*h.fortran_order)
    fail(where,
         "fortran_order is True (column-major data), which attograd does not read; save "
         "np.ascontiguousarray(a) instead");

  const Shape& shape = *h.shape;
  uint64_t numel = 1, needed = 0;
  for (int64_t s : shape)
    if (__builtin_mul_overflow(numel, uint64_t(s), &numel) || numel > uint64_t(INT64_MAX))
      fail(where,
           fmt::format("shape {} has more elements than a 64-bit count holds", shape_str(shape)));
  // A zero-size tensor too: (0, 2^62, 2^62) has no elements but strides past int64.
  if (std::string problem = shape_problem(shape); !problem.empty()) fail(where, problem);
  std::string_view data = bytes.substr(preamble + header_length);
  if (__builtin_mul_overflow(numel, uint64_t(element_bytes), &needed) || needed != data.size())
    fail(where, fmt::format("shape {} of '{}' needs {} x {} data bytes, but the file holds {}{}",
                            shape_str(shape), d, numel, element_bytes, data.size(),
                            data.size() < needed ? " (is the file truncated?)" : ""));

  Tensor t = Tensor::empty(shape);
  const char* src = data.data();
  size_t n = static_cast<size_t>(t.numel());
  size_t converted =
      element_bytes == 4 ? decode<float>(src, n, t.data()) : decode<double>(src, n, t.data());
  if (converted < n) fail(where, out_of_range(src, converted));
  return t;
}

std::string serialize(const Where& where, const Tensor& t) {
  if (!t.defined()) fail(where, "the tensor is undefined");
  const Shape& shape = t.shape();
  // Python's tuple syntax: (), (3,), (2, 3).
  std::string dims = fmt::format("{}", fmt::join(shape, ", "));
  if (shape.size() == 1) dims += ',';
  std::string header =
      fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': ({}), }}", stored_descr, dims);
  // Spaces, then '\n', up to a multiple of 64 bytes with the preamble. The
  // 2-byte length of version 1.0 holds up to 65535; longer headers (thousands
  // of dims) need version 2.0 and its 4-byte length.
  auto padding = [&](size_t preamble) { return (64 - (preamble + header.size() + 1) % 64) % 64; };
  size_t preamble = header.size() + padding(10) + 1 <= 65535 ? 10 : 12;
  header.append(padding(preamble), ' ');
  header += '\n';
  if (header.size() > max_header_bytes)
    fail(where,
         fmt::format("a tensor of {} dims makes a header too long to read back", shape.size()));

  std::string out(magic);
  out += static_cast<char>(preamble == 10 ? 1 : 2);
  out += '\0';
  for (size_t k = 0; k < preamble - 8; ++k)
    out += static_cast<char>((header.size() >> (8 * k)) & 0xFF);
  out += header;
  if (t.numel() > 0) out.append(reinterpret_cast<const char*>(t.data()), t.numel() * sizeof(real));
  return out;
}

}  // namespace

std::string serialize_npy(const Tensor& t) { return serialize(Where{"serialize_npy", ""}, t); }

void save_npy(const std::string& path, const Tensor& t) {
  Where where{"save_npy", path};
  write_file(where.op, path, serialize(where, t));
}

Tensor parse_npy(std::string_view bytes, const std::string& source_name) {
  return parse(Where{"parse_npy", source_name}, bytes);
}

Tensor load_npy(const std::string& path) {
  Where where{"load_npy", path};
  return parse(where, read_file(where.op, path));
}

}  // namespace ag
