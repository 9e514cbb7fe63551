// A small, strict JSON reader (RFC 8259) and the writing helpers the
// .safetensors format needs.
//
// JSON text is UTF-8. A value is an object {"key": value, ...}, an array
// [value, ...], a string "..." (escapes \" \\ \/ \b \f \n \r \t and \uXXXX,
// where a character above U+FFFF is written as a surrogate pair
// \uD83D\uDE00), a number -12.5e3, or true, false, null; spaces, tabs and
// newlines may stand between tokens. The reader is strict where leniency
// would hide a corrupt file: the whole text must be valid UTF-8, strings may
// not hold raw control characters or lone surrogates, a key may appear only
// once per object, nothing but whitespace may follow the value, and nesting
// deeper than 64 levels is refused, so hostile input cannot exhaust the stack
// (the reader is recursive, one call per level). Every error message gives
// the byte offset of the problem: "json: expected ':' after a key at byte 17".
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ag::json {

struct Value {
  enum class Kind { Null, Bool, Number, String, Array, Object };

  Kind kind = Kind::Null;
  size_t offset = 0;  // where the value starts in the text, for error messages

  bool boolean = false;  // Kind::Bool
  std::string string;    // Kind::String (decoded UTF-8); Kind::Number: the literal as written

  // Kind::Number. Integers are kept exactly: a double would silently round
  // sizes above 2^53. `is_integer` is true for a literal without fraction or
  // exponent that fits in int64; `number` is always set (rounded).
  bool is_integer = false;
  int64_t integer = 0;
  double number = 0;

  std::vector<Value> items;                            // Kind::Array
  std::vector<std::pair<std::string, Value>> members;  // Kind::Object, in document order

  // The member named `key` of an object, or null when there is none.
  const Value* find(std::string_view key) const;
};

// "an object", "a string", ...: for messages such as "shape is a string,
// expected an array".
const char* kind_name(Value::Kind kind);

struct Limits {
  int max_depth = 64;            // arrays and objects nested inside each other
  size_t max_values = SIZE_MAX;  // values in the whole document (memory bound)
};

// Parses a whole JSON document. Throws ag::Error "json: <problem> at byte N".
Value parse(std::string_view text, const Limits& limits = {});

// The offset of the first byte that breaks UTF-8 (overlong forms, surrogates
// and code points above U+10FFFF included), or std::string_view::npos when
// the text is valid.
size_t find_invalid_utf8(std::string_view text);

// `text` as a JSON string literal, quotes included: "a\"b\n". Only the
// characters JSON requires are escaped (quote, backslash, control characters);
// other UTF-8 passes through unchanged.
std::string quote(std::string_view text);

}  // namespace ag::json
