#include "core/io/json.hpp"

#include <charconv>
#include <unordered_set>

#include "core/error.hpp"

namespace ag::json {

const Value* Value::find(std::string_view key) const {
  for (const auto& [name, value] : members)
    if (name == key) return &value;
  return nullptr;
}

const char* kind_name(Value::Kind kind) {
  switch (kind) {
    case Value::Kind::Null:
      return "null";
    case Value::Kind::Bool:
      return "a boolean";
    case Value::Kind::Number:
      return "a number";
    case Value::Kind::String:
      return "a string";
    case Value::Kind::Array:
      return "an array";
    case Value::Kind::Object:
      return "an object";
  }
  return "?";
}

size_t find_invalid_utf8(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  for (size_t i = 0; i < n;) {
    unsigned c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    // The lead byte tells the sequence length and the range its code point
    // must fall in; a code point below that range is an overlong encoding,
    // one of the "same character, different bytes" tricks UTF-8 forbids.
    size_t len;
    uint32_t cp, min;
    if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return i;  // a continuation byte with no lead, or 0xF8..0xFF
    }
    if (n - i < len) return i;
    for (size_t k = 1; k < len; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) return i;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return i;
    i += len;
  }
  return std::string_view::npos;
}

std::string quote(std::string_view text) {
  std::string out = "\"";
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20)
          out += fmt::format("\\u{:04x}", c);
        else
          out += ch;
    }
  }
  out += '"';
  return out;
}

namespace {

// Recursive descent: one member function per grammar rule, `pos_` always at
// the next unread byte.
class Parser {
 public:
  Parser(std::string_view text, const Limits& limits) : text_(text), limits_(limits) {}

  Value document() {
    if (size_t bad = find_invalid_utf8(text_); bad != std::string_view::npos)
      fail(bad, "invalid UTF-8");
    skip_whitespace();
    Value v = value(0);
    skip_whitespace();
    if (pos_ != text_.size()) fail(pos_, "unexpected text after the value");
    return v;
  }

 private:
  [[noreturn]] void fail(size_t at, const std::string& problem) const {
    throw Error(fmt::format("json: {} at byte {}", problem, at));
  }

  bool at_end() const { return pos_ >= text_.size(); }
  // '\0' past the end: no token starts with it, so `peek() == c` needs no
  // separate end test (a NUL inside the text is an error either way).
  char peek() const { return at_end() ? '\0' : text_[pos_]; }

  void skip_whitespace() {
    while (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r') ++pos_;
  }

  // Consumes `c` or fails with "expected <what>".
  void expect(char c, const char* what) {
    if (peek() != c) fail(pos_, fmt::format("expected {}", what));
    ++pos_;
  }

  Value value(int depth) {
    if (++count_ > limits_.max_values)
      fail(pos_, fmt::format("more than {} values in the document", limits_.max_values));
    if (at_end()) fail(pos_, "unexpected end of text, expected a value");
    Value v;
    v.offset = pos_;
    char c = peek();
    if (c == '{' || c == '[') {
      if (depth >= limits_.max_depth)
        fail(pos_, fmt::format("nesting deeper than {} levels", limits_.max_depth));
      if (c == '{')
        object(v, depth + 1);
      else
        array(v, depth + 1);
    } else if (c == '"') {
      v.kind = Value::Kind::String;
      v.string = string();
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      number(v);
    } else if (literal("true")) {
      v.kind = Value::Kind::Bool;
      v.boolean = true;
    } else if (literal("false")) {
      v.kind = Value::Kind::Bool;
    } else if (literal("null")) {
      v.kind = Value::Kind::Null;
    } else {
      auto byte = static_cast<unsigned char>(c);
      fail(pos_, byte >= 0x21 && byte < 0x7F
                     ? fmt::format("unexpected character '{}', expected a value", c)
                     : fmt::format("unexpected byte 0x{:02x}, expected a value", byte));
    }
    return v;
  }

  bool literal(std::string_view word) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    return true;
  }

  void object(Value& v, int depth) {
    v.kind = Value::Kind::Object;
    ++pos_;  // '{'
    skip_whitespace();
    if (peek() == '}') {
      ++pos_;
      return;
    }
    // Seen keys in a hash set: a linear scan per key would make a header
    // with many tensors quadratic.
    std::unordered_set<std::string> seen;
    for (;;) {
      skip_whitespace();
      size_t key_at = pos_;
      if (peek() != '"') fail(pos_, "expected a string key");
      std::string key = string();
      if (!seen.insert(key).second) fail(key_at, fmt::format("duplicate key {}", quote(key)));
      skip_whitespace();
      expect(':', "':' after a key");
      skip_whitespace();
      Value member = value(depth);
      v.members.emplace_back(std::move(key), std::move(member));
      skip_whitespace();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      expect('}', "',' or '}' after an object member");
      return;
    }
  }

  void array(Value& v, int depth) {
    v.kind = Value::Kind::Array;
    ++pos_;  // '['
    skip_whitespace();
    if (peek() == ']') {
      ++pos_;
      return;
    }
    for (;;) {
      skip_whitespace();
      v.items.push_back(value(depth));
      skip_whitespace();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      expect(']', "',' or ']' after an array item");
      return;
    }
  }

  // Four hex digits of a \u escape.
  uint32_t hex4() {
    if (text_.size() - pos_ < 4) fail(pos_, "truncated \\u escape");
    uint32_t code = 0;
    for (int k = 0; k < 4; ++k) {
      char h = text_[pos_ + k];
      int d = h >= '0' && h <= '9'   ? h - '0'
              : h >= 'a' && h <= 'f' ? h - 'a' + 10
              : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                     : -1;
      if (d < 0) fail(pos_ + k, "bad hex digit in a \\u escape");
      code = code * 16 + static_cast<uint32_t>(d);
    }
    pos_ += 4;
    return code;
  }

  static void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  std::string string() {
    size_t start = pos_++;  // the opening quote
    std::string out;
    for (;;) {
      if (at_end()) fail(start, "unterminated string");
      auto c = static_cast<unsigned char>(text_[pos_]);
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c < 0x20) fail(pos_, "raw control character in a string (write it as an escape)");
      if (c != '\\') {
        out += static_cast<char>(c);  // UTF-8 was validated for the whole text
        ++pos_;
        continue;
      }
      size_t escape_at = pos_++;
      if (at_end()) fail(start, "unterminated string");
      char e = text_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'u': {
          uint32_t cp = hex4();
          // Characters above U+FFFF come as a high surrogate D800..DBFF
          // followed by a low one DC00..DFFF; either one alone is no character.
          if (cp >= 0xDC00 && cp <= 0xDFFF) fail(escape_at, "lone low surrogate in a \\u escape");
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (text_.substr(pos_, 2) != "\\u") fail(escape_at, "lone high surrogate");
            pos_ += 2;
            uint32_t low = hex4();
            if (low < 0xDC00 || low > 0xDFFF) fail(escape_at, "lone high surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          append_utf8(out, cp);
          break;
        }
        default:
          fail(escape_at, fmt::format("unknown escape '\\{}'", e));
      }
    }
  }

  size_t digits() {
    size_t start = pos_;
    while (peek() >= '0' && peek() <= '9') ++pos_;
    return pos_ - start;
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  void number(Value& v) {
    size_t start = pos_;
    v.kind = Value::Kind::Number;
    if (peek() == '-') ++pos_;
    size_t int_start = pos_;
    size_t n = digits();
    if (n == 0) fail(pos_, "expected a digit");
    if (n > 1 && text_[int_start] == '0') fail(int_start, "leading zero in a number");
    bool integer = true;
    if (peek() == '.') {
      ++pos_;
      if (digits() == 0) fail(pos_, "expected a digit after '.'");
      integer = false;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (digits() == 0) fail(pos_, "expected a digit in the exponent");
      integer = false;
    }
    std::string_view literal = text_.substr(start, pos_ - start);
    v.string = std::string(literal);
    // from_chars never reads the locale: "1.5" means 1.5 everywhere. Out of
    // range (1e999) leaves `number` at 0; the text is still valid JSON.
    std::from_chars(literal.data(), literal.data() + literal.size(), v.number);
    if (integer) {
      auto [end, error] =
          std::from_chars(literal.data(), literal.data() + literal.size(), v.integer);
      v.is_integer = error == std::errc() && end == literal.data() + literal.size();
      if (!v.is_integer) v.integer = 0;
    }
  }

  std::string_view text_;
  const Limits& limits_;
  size_t pos_ = 0;
  size_t count_ = 0;
};

}  // namespace

Value parse(std::string_view text, const Limits& limits) { return Parser(text, limits).document(); }

}  // namespace ag::json
