// Tests of core/json, core/safetensors and core/npy: round trips that keep
// every bit, the bytes of each format checked against published or
// hand-written expectations, and tables of corrupted files, each of which
// must give an ag::Error naming the file and the problem (never a crash: the
// suite also runs under AddressSanitizer).
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "core/io/json.hpp"
#include "core/io/npy.hpp"
#include "core/io/safetensors.hpp"
#include "tests/helpers.hpp"
#include "tests/temp_dir.hpp"

namespace {

using namespace ag;
using ag::testing::check_error;
using ag::testing::is_double;
using ag::testing::little_endian;
using ag::testing::read_bytes;
using ag::testing::TempDir;
namespace fs = std::filesystem;


void write_bytes(const std::string& path, std::string_view bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

std::string bytes(std::initializer_list<int> values) {
  std::string out;
  for (int v : values) out += static_cast<char>(v);
  return out;
}

// Same shape and the same bits in every element (NaN payloads and -0 included).
void check_identical(const Tensor& a, const Tensor& b) {
  REQUIRE(a.shape() == b.shape());
  // (An empty tensor's data() may be null, which memcmp must not see.)
  CHECK((a.numel() == 0 || std::memcmp(a.data(), b.data(), a.numel() * sizeof(real)) == 0));
}

Tensor special_values() {
  using L = std::numeric_limits<real>;
  return from_vector({0, -0.0, 1, -1.5, real(0.1), L::quiet_NaN(), L::infinity(), -L::infinity(),
                      L::denorm_min(), L::max(), L::lowest(), L::epsilon()});
}

// A .safetensors file from its parts.
std::string st_file(std::string_view header, std::string_view data) {
  return little_endian(header.size(), 8) + std::string(header) + std::string(data);
}
// A .npy file from its parts: version major.0 and a header text.
std::string npy_file(int major, std::string_view header, std::string_view data) {
  return "\x93NUMPY" + bytes({major, 0}) + little_endian(header.size(), major == 1 ? 2 : 4) +
         std::string(header) + std::string(data);
}

// A corrupted file and fragments its error message must contain.
using Corrupted = std::pair<std::string, std::vector<std::string>>;

// Writes each file and expects `load` to refuse it with an ag::Error that
// starts "<op>: '<path>': " and contains the fragments.
template <typename Load>
void check_refused(const TempDir& dir, const std::string& op, Load load,
                   const std::vector<Corrupted>& cases) {
  for (size_t i = 0; i < cases.size(); ++i) {
    std::string path = dir.path(fmt::format("case{}", i));
    write_bytes(path, cases[i].first);
    INFO("case " << i);
    std::vector<std::string> expected = {op + ": '" + path + "': "};
    expected.insert(expected.end(), cases[i].second.begin(), cases[i].second.end());
    check_error([&] { (void)load(path); }, expected);
  }
}

// `good` cut short at every byte must be refused. With 1 to 3 random bytes
// flipped it may load (a flip in the data changes a number) or be refused,
// but only ever with an ag::Error (any other exception fails the test).
template <typename Load>
void check_cut_and_flipped(const TempDir& dir, const std::string& op, const std::string& good,
                           Load load) {
  std::string path = dir.path("damaged");
  std::string prefix = op + ": '" + path + "': ";
  for (size_t n = 0; n < good.size(); ++n) {
    write_bytes(path, std::string_view(good).substr(0, n));
    INFO("cut at byte " << n);
    check_error([&] { (void)load(path); }, {prefix});
  }
  std::mt19937 rng(2024);  // fixed seed: the same flips on every run
  int refused = 0;
  for (int trial = 0; trial < 2000; ++trial) {
    std::string file = good;
    for (int k = 0; k <= trial % 3; ++k) file[rng() % file.size()] ^= char(1 + rng() % 255);
    write_bytes(path, file);
    try {
      (void)load(path);
    } catch (const Error& e) {
      ++refused;
      CHECK(std::string(e.what()).starts_with(prefix));
    }
  }
  CHECK(refused > 500);
}

}  // namespace

// --- json ---------------------------------------------------------------------------------

TEST_CASE("io/json: objects, arrays, escapes, surrogate pairs, numbers and literals") {
  json::Value v = json::parse(
      R"( {"s": "q\" b\\ s\/ \b\f\n\r\t \u00e9 \ud83d\ude00",)"
      R"( "a": [1, -0, 2.5e-1, true, false, null, {}],)"
      R"( "big": [9223372036854775807, -9223372036854775808, 9223372036854775808, 1E3]})"
      "\n");
  REQUIRE(v.kind == json::Value::Kind::Object);
  CHECK(v.members.size() == 3);
  CHECK(v.find("s")->string == "q\" b\\ s/ \b\f\n\r\t \xC3\xA9 \xF0\x9F\x98\x80");
  const auto& a = v.find("a")->items;
  REQUIRE(a.size() == 7);
  CHECK((a[0].is_integer && a[0].integer == 1));
  CHECK((a[1].is_integer && a[1].integer == 0));
  CHECK((!a[2].is_integer && a[2].number == 0.25));
  CHECK((a[3].kind == json::Value::Kind::Bool && a[3].boolean && !a[4].boolean));
  CHECK(a[5].kind == json::Value::Kind::Null);
  CHECK((a[6].kind == json::Value::Kind::Object && a[6].members.empty()));
  const auto& big = v.find("big")->items;
  CHECK(big[0].integer == std::numeric_limits<int64_t>::max());
  CHECK(big[1].integer == std::numeric_limits<int64_t>::min());
  CHECK(!big[2].is_integer);  // one past int64: flagged, not wrapped
  CHECK(big[2].string == "9223372036854775808");
  CHECK((!big[3].is_integer && big[3].number == 1000));
  CHECK(v.find("missing") == nullptr);
}

TEST_CASE("io/json: malformed text is an error giving the byte offset") {
  std::string deep(65, '['), ok_deep = std::string(64, '[') + std::string(64, ']');
  CHECK(json::parse(ok_deep).kind == json::Value::Kind::Array);  // exactly the limit
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "unexpected end of text, expected a value at byte 0"},
      {"{\"a\":1,}", "expected a string key at byte 7"},
      {"[1 2]", "expected ',' or ']' after an array item at byte 3"},
      {"{\"a\" 1}", "expected ':' after a key at byte 5"},
      {"01", "leading zero in a number at byte 0"},
      {"1.", "expected a digit after '.' at byte 2"},
      {"-", "expected a digit at byte 1"},
      {"tru", "unexpected character 't'"},
      {"\"abc", "unterminated string at byte 0"},
      {"\"\\x\"", "unknown escape '\\x' at byte 1"},
      {"\"\\u12g4\"", "bad hex digit in a \\u escape at byte 5"},
      {"\"\\ud800\"", "lone high surrogate at byte 1"},
      {"\"\\ud800\\u0041\"", "lone high surrogate at byte 1"},
      {"\"\\udc00\"", "lone low surrogate in a \\u escape at byte 1"},
      {"\"a\nb\"", "raw control character in a string"},
      {"{\"a\":1,\"a\":2}", "duplicate key \"a\" at byte 7"},
      {"[1] x", "unexpected text after the value at byte 4"},
      {"\"\xff\"", "invalid UTF-8 at byte 1"},
      {"\"\xc0\xaf\"", "invalid UTF-8 at byte 1"},      // overlong '/'
      {"\"\xed\xa0\x80\"", "invalid UTF-8 at byte 1"},  // an encoded surrogate
      {"\"\xe2\x82\"", "invalid UTF-8 at byte 1"},      // cut short
      {std::string("[\0]", 3), "unexpected byte 0x00, expected a value at byte 1"},
      {deep, "nesting deeper than 64 levels at byte 64"},
      {std::string(100000, '['), "nesting deeper than 64 levels at byte 64"},
  };
  for (const auto& [text, fragment] : cases) {
    INFO("text: " << text.substr(0, 80));
    check_error([&] { (void)json::parse(text); }, {"json: ", fragment});
  }
  check_error([] { (void)json::parse("[1,2,3]", json::Limits{.max_values = 3}); },
              {"json: more than 3 values in the document at byte 5"});
}

TEST_CASE("io/json: quote escapes what JSON requires and parse reads it back") {
  CHECK(json::quote("a\"b\\c/\n\x01\x1f\xC3\xA9") == "\"a\\\"b\\\\c/\\n\\u0001\\u001f\xC3\xA9\"");
  std::string all;
  for (int c = 1; c < 128; ++c) all += static_cast<char>(c);
  all += "\xF0\x9F\x98\x80";
  CHECK(json::parse(json::quote(all)).string == all);
  CHECK(json::find_invalid_utf8(all) == std::string_view::npos);
  CHECK(json::find_invalid_utf8("ab\xF4\x90\x80\x80") == 2);  // above U+10FFFF
}

// --- safetensors ----------------------------------------------------------------------------

TEST_CASE("io/safetensors: the published test vectors, byte for byte") {
  // From the Rust crate's own tests in the huggingface/safetensors repository
  // (safetensors/src/tensor.rs, commit 000a16f45cff): test_serialization ("attn.0", F32, shape
  // [1,2,3], values 0..5), test_serialization_forced_alignement ("attn0",
  // shape [1,1,2,3]: the header is padded with 7 spaces) and test_empty.
  const std::string vector_1 =
      bytes({64, 0,  0,   0,   0,   0,   0,   0,   123, 34,  97,  116, 116, 110, 46,  48,
             34, 58, 123, 34,  100, 116, 121, 112, 101, 34,  58,  34,  70,  51,  50,  34,
             44, 34, 115, 104, 97,  112, 101, 34,  58,  91,  49,  44,  50,  44,  51,  93,
             44, 34, 100, 97,  116, 97,  95,  111, 102, 102, 115, 101, 116, 115, 34,  58,
             91, 48, 44,  50,  52,  93,  125, 125, 0,   0,   0,   0,   0,   0,   128, 63,
             0,  0,  0,   64,  0,   0,   64,  64,  0,   0,   128, 64,  0,   0,   160, 64});
  const std::string vector_2 =
      bytes({72,  0,   0,   0,   0,   0,   0,   0,   123, 34, 97, 116, 116, 110, 48,  34,  58,  123,
             34,  100, 116, 121, 112, 101, 34,  58,  34,  70, 51, 50,  34,  44,  34,  115, 104, 97,
             112, 101, 34,  58,  91,  49,  44,  49,  44,  50, 44, 51,  93,  44,  34,  100, 97,  116,
             97,  95,  111, 102, 102, 115, 101, 116, 115, 34, 58, 91,  48,  44,  50,  52,  93,  125,
             125, 32,  32,  32,  32,  32,  32,  32,  0,   0,  0,  0,   0,   0,   128, 63,  0,   0,
             0,   64,  0,   0,   64,  64,  0,   0,   128, 64, 0,  0,   160, 64});
  const std::string empty = bytes({8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32});
  const std::string empty_with_metadata =
      bytes({40,  0,   0,   0,  0,  0,  0,   0,   123, 34,  95,  95,  109, 101, 116, 97,
             100, 97,  116, 97, 95, 95, 34,  58,  123, 34,  102, 114, 97,  109, 101, 119,
             111, 114, 107, 34, 58, 34, 112, 116, 34,  125, 125, 32,  32,  32,  32,  32});
  Tensor t = from_vector({0, 1, 2, 3, 4, 5}, {1, 2, 3});
  if constexpr (!is_double) {
    CHECK(serialize_safetensors({{"attn.0", t}}) == vector_1);
    CHECK(serialize_safetensors({{"attn0", from_vector(t.to_vector(), {1, 1, 2, 3})}}) == vector_2);
  } else {
    // The double flavor writes F64: the same header with "F64" and 48 bytes,
    // the same length, so no padding; then the six doubles 0..5.
    std::string expected = little_endian(64, 8) +
                           R"({"attn.0":{"dtype":"F64","shape":[1,2,3],"data_offsets":[0,48]}})" +
                           std::string(14, '\0') + bytes({0xF0, 0x3F}) + std::string(7, '\0') +
                           bytes({0x40}) + std::string(6, '\0') + bytes({0x08, 0x40}) +
                           std::string(6, '\0') + bytes({0x10, 0x40}) + std::string(6, '\0') +
                           bytes({0x14, 0x40});
    CHECK(serialize_safetensors({{"attn.0", t}}) == expected);
  }
  CHECK(serialize_safetensors({}) == empty);
  CHECK(serialize_safetensors({}, {{"framework", "pt"}}) == empty_with_metadata);

  // Both flavors read the published files.
  for (const std::string& file : {vector_1, vector_2}) {
    NamedTensors loaded = parse_safetensors(file, "vector");
    REQUIRE(loaded.size() == 1);
    CHECK((loaded[0].first == "attn.0" || loaded[0].first == "attn0"));
    CHECK(loaded[0].second.name() == loaded[0].first);
    CHECK(loaded[0].second.to_vector() == t.to_vector());
  }
  std::map<std::string, std::string> metadata;
  CHECK(parse_safetensors(empty_with_metadata, "vector", &metadata).empty());
  CHECK(metadata == std::map<std::string, std::string>{{"framework", "pt"}});
}

TEST_CASE("io/safetensors: round trip keeps names, shapes, every bit, and metadata") {
  TempDir dir("io");
  Generator gen(7);
  NamedTensors tensors = {{"z.last", randn({2, 3, 4}, gen)},
                          {"scalar", scalar(real(-2.5))},
                          {"empty", zeros({0, 3})},
                          {"special", special_values()},
                          {"name with \"quotes\", \\ and \xC3\xA9", arange(5)},
                          {"", ones({1})}};
  std::map<std::string, std::string> metadata = {{"format", "pt"}, {"note\n", "a \"b\" \\ \x01"}};
  std::string path = dir.path("model.safetensors");
  save_safetensors(path, tensors, metadata);
  CHECK(read_bytes(path) == serialize_safetensors(tensors, metadata));
  CHECK(read_bytes(path).find("__metadata__") == 10);  // first in the header

  // The same tensors in another order give the same bytes.
  NamedTensors reversed(tensors.rbegin(), tensors.rend());
  CHECK(serialize_safetensors(reversed, metadata) == read_bytes(path));

  std::map<std::string, std::string> loaded_metadata;
  NamedTensors loaded = load_safetensors(path, &loaded_metadata);
  CHECK(loaded_metadata == metadata);
  // Written sorted by name, so read back in name order.
  std::vector<std::string> names = {"",       "empty",   "name with \"quotes\", \\ and \xC3\xA9",
                                    "scalar", "special", "z.last"};
  REQUIRE(loaded.size() == names.size());
  for (size_t i = 0; i < loaded.size(); ++i) {
    CHECK(loaded[i].first == names[i]);
    for (const auto& [name, original] : tensors)
      if (name == names[i]) check_identical(loaded[i].second, original);
  }
}

TEST_CASE("io/safetensors: F32 and F64 both load, in the order of their data offsets") {
  // "b" is listed first but its data comes second; 0.1 as F64 and -1.5 as F32.
  std::string header = R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]},)"
                       R"("a":{"dtype":"F64","shape":[],"data_offsets":[0,8]}})";
  std::string file =
      st_file(header, bytes({154, 153, 153, 153, 153, 153, 185, 63, 0, 0, 192, 191}));
  NamedTensors loaded = parse_safetensors(file, "mixed");
  REQUIRE(loaded.size() == 2);
  CHECK(loaded[0].first == "a");
  CHECK(loaded[0].second.shape() == Shape{});
  CHECK(loaded[0].second.item() == real(0.1));
  CHECK(loaded[1].first == "b");
  CHECK(loaded[1].second.item() == real(-1.5));
}

TEST_CASE("io/load: a double beyond float's range is refused, not made inf") {
  std::string big = little_endian(0x7E37E43C8800759CULL, 8);  // 1e300 as a little-endian double
  std::string st = st_file(R"({"x":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}})",
                           little_endian(0x3FF8000000000000ULL, 8) + big);  // 1.5, 1e300
  std::string npy = npy_file(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }\n",
                             little_endian(0x3FF8000000000000ULL, 8) + big);
  if constexpr (is_double) {
    CHECK(double(parse_safetensors(st, "big")[0].second.data()[1]) == 1e300);
    CHECK(double(parse_npy(npy, "big").data()[1]) == 1e300);
  } else {
    check_error([&] { (void)parse_safetensors(st, "big"); },
                {"parse_safetensors: 'big': tensor 'x': element 1 is 1e+300, beyond the range of "
                 "float (the double flavor can load it)"});
    check_error([&] { (void)parse_npy(npy, "big"); },
                {"parse_npy: 'big': element 1 is 1e+300, beyond the range of float"});
  }
}

TEST_CASE("io/safetensors: save refuses what it cannot write faithfully") {
  TempDir dir("io");
  std::string path = dir.path("bad.safetensors");
  check_error(
      [&] {
        save_safetensors(path, {{"a", ones({1})}, {"a", ones({2})}});
      },
      {"save_safetensors: '", path, "the name 'a' is used twice"});
  check_error([&] { save_safetensors(path, {{"w", Tensor()}}); }, {"tensor 'w' is undefined"});
  check_error([&] { save_safetensors(path, {{"__metadata__", ones({1})}}); }, {"is reserved"});
  check_error([&] { save_safetensors(path, {{"\xff", ones({1})}}); }, {"is not valid UTF-8"});
  check_error(
      [&] {
        (void)serialize_safetensors({}, {{"k", "\xc0"}});
      },
      {"serialize_safetensors: metadata value", "is not valid UTF-8"});
  check_error([&] { save_safetensors(dir.path("no/such/dir/x.safetensors"), {}); },
              {"save_safetensors: cannot create '", "No such file or directory"});
  CHECK(!fs::exists(path));
}

TEST_CASE("io/safetensors: corrupted files give an ag::Error naming the file and the problem") {
  TempDir dir("io");
  auto entry = [](const std::string& name, const std::string& fields) {
    return fmt::format("\"{}\":{{{}}}", name, fields);
  };
  auto f32 = [&](const std::string& name, const std::string& shape, int begin, int end) {
    return entry(
        name, fmt::format(R"("dtype":"F32","shape":{},"data_offsets":[{},{}])", shape, begin, end));
  };
  std::string zeros24(24, '\0');
  const std::vector<Corrupted> cases = {
      {"", {"the file has 0 bytes, too short for the 8-byte header length"}},
      {std::string("\x10\x00\x00", 3), {"the file has 3 bytes"}},
      {little_endian(1000, 8) + "{}",
       {"header length 1000 is more than the 2 bytes that follow it"}},
      {little_endian(uint64_t(1) << 40, 8),
       {"header length 1099511627776 is over the 100000000-byte limit"}},
      {little_endian(~uint64_t(0), 8) + "{}", {"header length 18446744073709551615 is over"}},
      {npy_file(1, "{}", ""), {"header length", "is over the 100000000-byte limit"}},
      {st_file("{not json}", ""), {"header is not valid JSON: expected a string key at byte 1"}},
      {st_file("", ""), {"header is not valid JSON: unexpected end of text"}},
      {st_file("[1,2]", ""), {"header is an array, expected a JSON object"}},
      {st_file("{\"\xff\":1}", ""), {"header is not valid UTF-8 (byte 2 of the header)"}},
      {st_file(std::string(200, '[') + std::string(200, ']'), ""), {"nesting deeper than 64"}},
      {st_file("{\"a\":1}", ""), {"tensor 'a' is described by a number, expected an object"}},
      {st_file("{" + entry("a", R"("shape":[],"data_offsets":[0,4])") + "}", zeros24),
       {"tensor 'a' has no \"dtype\""}},
      {st_file("{" + entry("a", R"("dtype":7,"shape":[],"data_offsets":[0,4])") + "}", zeros24),
       {"tensor 'a': \"dtype\" is a number, expected a string"}},
      {st_file("{" + entry("a", R"("dtype":"F32","data_offsets":[0,4])") + "}", zeros24),
       {"tensor 'a' has no \"shape\""}},
      {st_file("{" + entry("a", R"("dtype":"F32","shape":"2","data_offsets":[0,4])") + "}", ""),
       {"tensor 'a': \"shape\" is a string, expected an array"}},
      {st_file("{" + entry("a", R"("dtype":"F32","shape":[1])") + "}", zeros24),
       {"tensor 'a' has no \"data_offsets\""}},
      {st_file("{" + entry("a", R"("dtype":"BF16","shape":[2],"data_offsets":[0,4])") + "}", ""),
       {"tensor 'a' has dtype 'BF16', which attograd cannot load (only F32 and F64)"}},
      {st_file("{" + entry("i", R"("dtype":"I64","shape":[1],"data_offsets":[0,8])") + "}", ""),
       {"tensor 'i' has dtype 'I64'"}},
      {st_file("{" + f32("a", "[2,-3]", 0, 24) + "}", zeros24),
       {"tensor 'a': shape[1] is -3, negative"}},
      {st_file("{" + f32("a", "[2.5]", 0, 24) + "}", zeros24),
       {"tensor 'a': shape[0] is 2.5, not a whole number"}},
      {st_file("{" + f32("a", "[\"6\"]", 0, 24) + "}", zeros24),
       {"tensor 'a': shape[0] is a string, expected a whole number"}},
      {st_file("{" + f32("a", "[99999999999999999999]", 0, 24) + "}", zeros24),
       {"shape[0] is 99999999999999999999, too large for a 64-bit integer"}},
      {st_file("{" + f32("a", "[4294967296,4294967296]", 0, 24) + "}", zeros24),
       {"shape (4294967296,4294967296) has more elements than a 64-bit count holds"}},
      {st_file("{" +
                   entry("a", R"("dtype":"F32","shape":[1000000000000],)"
                              R"("data_offsets":[0,4000000000000])") +
                   "}",
               zeros24),
       {"data_offsets [0, 4000000000000] run past the data section's 24 bytes"}},
      {st_file("{" + f32("a", "[2,3]", 0, 20) + "}", zeros24),
       {"tensor 'a': shape (2,3) of F32 needs 6 x 4 bytes, but data_offsets [0, 20] hold 20"}},
      {st_file("{" + f32("a", "[6]", 24, 0) + "}", zeros24), {"[24, 0] end before begin"}},
      {st_file("{" + entry("a", R"("dtype":"F32","shape":[6],"data_offsets":[0,24,1])") + "}",
               zeros24),
       {"data_offsets has 3 items, expected [begin, end]"}},
      {st_file("{" + entry("a", R"("dtype":"F32","shape":[6],"data_offsets":[0,2.4e1])") + "}",
               zeros24),
       {"data_offsets end is 2.4e1, not a whole number"}},
      {st_file("{" + f32("a", "[6]", 0, 24) + "}", zeros24.substr(10)),
       {"data_offsets [0, 24] run past the data section's 14 bytes (is the file truncated?)"}},
      {st_file("{" + f32("a", "[4]", 0, 16) + "," + f32("b", "[2]", 8, 16) + "}", zeros24),
       {"tensor 'b' (data_offsets [8, 16]) overlaps tensor 'a' ([0, 16])"}},
      {st_file("{" + f32("a", "[2]", 0, 8) + "," + f32("b", "[2]", 16, 24) + "}", zeros24),
       {"gap in the data section: bytes [8, 16) belong to no tensor"}},
      {st_file("{" + f32("a", "[4]", 0, 16) + "}", zeros24),
       {"the data section has 24 bytes but the tensors cover 16"}},
      {st_file("{" + f32("a", "[1]", 0, 4) + "," + f32("a", "[1]", 4, 8) + "}", zeros24),
       {"header is not valid JSON: duplicate key \"a\""}},
      {st_file(R"({"__metadata__":[1]})", ""), {"__metadata__ is an array, expected an object"}},
      {st_file(R"({"__metadata__":{"k":1}})", ""), {"__metadata__ 'k' is a number"}},
      {st_file("{" + f32(std::string(500, 'n'), "[2]", 0, 4) + "}", zeros24),
       {"tensor '" + std::string(60, 'n') + "...'"}},
  };
  check_refused(
      dir, "load_safetensors", [](auto& p) { return load_safetensors(p); }, cases);
  std::string missing = dir.path("missing.safetensors");
  check_error([&] { (void)load_safetensors(missing); },
              {"load_safetensors: cannot open '" + missing + "': No such file or directory"});
  check_error([&] { (void)load_safetensors(dir.path("")); }, {"cannot read", "Is a directory"});
}

TEST_CASE("io/safetensors: a file cut at any byte, or with bytes flipped, never crashes") {
  TempDir dir("io");
  std::string good = serialize_safetensors(
      {{"w", from_vector({1, 2, 3, 4, 5, 6}, {2, 3})}, {"b", from_vector({7, 8})}}, {{"k", "v"}});
  check_cut_and_flipped(dir, "load_safetensors", good, [](auto& p) { return load_safetensors(p); });
}

// --- npy ------------------------------------------------------------------------------------

TEST_CASE("io/npy: the byte layout of a small tensor, written out by hand") {
  // 10-byte preamble (magic, version 1.0, header length 118 = 0x76), the
  // 59-character dict, 58 spaces and '\n' (10 + 118 = 128, a multiple of
  // 64), then the elements 0..5 little-endian.
  std::string expected =
      std::string("\x93NUMPY\x01\x00\x76\x00", 10) + "{'descr': '" + (is_double ? "<f8" : "<f4") +
      "', 'fortran_order': False, 'shape': (2, 3), }" + std::string(58, ' ') + "\n";
  if constexpr (is_double)
    expected += std::string(14, '\0') + bytes({0xF0, 0x3F}) + std::string(7, '\0') + bytes({0x40}) +
                std::string(6, '\0') + bytes({0x08, 0x40}) + std::string(6, '\0') +
                bytes({0x10, 0x40}) + std::string(6, '\0') + bytes({0x14, 0x40});
  else
    expected +=
        bytes({0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64});
  TempDir dir("io");
  std::string path = dir.path("small.npy");
  save_npy(path, tensor({{0, 1, 2}, {3, 4, 5}}));
  CHECK(read_bytes(path) == expected);
  check_identical(load_npy(path), tensor({{0, 1, 2}, {3, 4, 5}}));
}

TEST_CASE("io/npy: round trip of 0-dim, empty and n-dim tensors keeps every bit") {
  TempDir dir("io");
  Generator gen(3);
  std::vector<Tensor> cases = {scalar(real(0.1)),     zeros({0}),
                               zeros({2, 0, 3}),      special_values(),
                               randn({2, 3, 4}, gen), ones(Shape(40, 1))};
  for (const Tensor& t : cases) {
    INFO("shape " << shape_str(t.shape()));
    std::string path = dir.path("t.npy");
    save_npy(path, t);
    std::string file = read_bytes(path);
    CHECK(file.size() % 64 == (t.numel() * sizeof(real)) % 64);  // the data starts aligned
    check_identical(load_npy(path), t);
  }
  CHECK(serialize_npy(scalar(1)).find("'shape': (), }") != std::string::npos);
  CHECK(serialize_npy(zeros({0})).find("'shape': (0,), }") != std::string::npos);
  // Thousands of dims overflow version 1.0's 2-byte header length: version 2.0.
  std::string long_header = serialize_npy(ones(Shape(22000, 1)));
  CHECK(long_header[6] == 2);
  CHECK(parse_npy(long_header, "long").dim() == 22000);
}

TEST_CASE("io/npy: versions 2.0 and 3.0, both dtypes, and other writers' header styles") {
  std::string f64_pair = bytes({154, 153, 153, 153, 153, 153, 185, 63, 0, 0, 0, 0, 0, 0, 248, 191});
  std::string f32_pair = bytes({0, 0, 0, 0, 0, 0, 192, 191});
  const std::vector<std::tuple<int, std::string, std::string>> cases = {
      // As recent NumPy writes it: more spaces than the padding needs (room to grow).
      {1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }                    \n",
       f64_pair},
      {2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", f32_pair},
      {3, "{\"shape\": (2, ), \"fortran_order\": False, \"descr\": '=f8'}", f64_pair},
      {1, "{'descr':'|f4','fortran_order':False,'shape':(1,2)}\n", f32_pair},
  };
  for (const auto& [major, header, data] : cases) {
    INFO("header " << header);
    Tensor t = parse_npy(npy_file(major, header, data), "v");
    CHECK(t.numel() == 2);
    CHECK(t.data()[0] == real(data.size() == 16 ? 0.1 : 0.0));
    CHECK(t.data()[1] == real(-1.5));
  }
}

TEST_CASE("io/npy: corrupted files give an ag::Error naming the file and the problem") {
  TempDir dir("io");
  auto header = [](const std::string& descr, const std::string& order, const std::string& shape) {
    return fmt::format("{{'descr': '{}', 'fortran_order': {}, 'shape': {}, }}\n", descr, order,
                       shape);
  };
  std::string f4 = header("<f4", "False", "(2, 3)"), data(24, '\0');
  const std::vector<Corrupted> cases = {
      {"", {"the file has 0 bytes, too short for the .npy preamble"}},
      {"\x93NUM", {"the file has 4 bytes, too short"}},
      {"PK\x03\x04 a zip file", {"not a .npy file: it does not start with \"\\x93NUMPY\""}},
      {npy_file(4, f4, data), {"unsupported .npy version 4.0 (attograd reads 1.0, 2.0 and 3.0)"}},
      {"\x93NUMPY\x01\x01" + little_endian(f4.size(), 2) + f4 + data,
       {"unsupported .npy version 1.1"}},
      {std::string("\x93NUMPY\x02\x00\x05", 9),
       {"the file has 9 bytes, too short for the .npy preamble"}},
      {std::string("\x93NUMPY\x01\x00", 8) + little_endian(500, 2) + f4,
       {"header length 500 is more than the 60 bytes"}},
      {std::string("\x93NUMPY\x02\x00", 8) + little_endian(3u << 30, 4),
       {"header length 3221225472 is over the 1048576"}},
      {npy_file(1, "garbage", ""), {"header is not a valid dict literal: expected '{' opening"}},
      {npy_file(1, "{'descr' '<f4'}", ""), {"expected ':' after a key at byte 9 of the header"}},
      {npy_file(1, "{'descr': <f4}", ""), {"expected a quoted string at byte 10"}},
      {npy_file(1, "{'descr': '<f4", ""), {"unterminated string at byte 10"}},
      {npy_file(1, "{'descr': '<f4'} x", ""), {"unexpected text after the dict at byte 17"}},
      {npy_file(1, "{'fortran_order': false}", ""), {"expected True or False"}},
      {npy_file(1, "{'descr': '<f4', 'descr': '<f4'}", ""), {"duplicate key 'descr' at byte 17"}},
      {npy_file(1, "{'descr': '<f4', 'extra': 1}", ""), {"header has an unexpected key 'extra'"}},
      {npy_file(1, "{'fortran_order': False, 'shape': ()}", ""), {"header has no 'descr'"}},
      {npy_file(1, "{'descr': '<f4', 'shape': ()}", ""), {"header has no 'fortran_order'"}},
      {npy_file(1, "{'descr': '<f4', 'fortran_order': False}", ""), {"header has no 'shape'"}},
      {npy_file(1, header("<i8", "False", "(3,)"), data), {"dtype '<i8' is not supported"}},
      {npy_file(1, header("<f2", "False", "(3,)"), data), {"dtype '<f2' is not supported"}},
      {npy_file(1, header(">f4", "False", "(6,)"), data), {"this data is big-endian"}},
      {npy_file(1, header("<f4", "True", "(2, 3)"), data),
       {"fortran_order is True (column-major data), which attograd does not read"}},
      {npy_file(1, header("<f4", "False", "(6)"), data), {"a 1-element tuple needs a comma"}},
      {npy_file(1, header("<f4", "False", "(2, -3)"), data), {"negative size in the shape"}},
      {npy_file(1, header("<f4", "False", "(2, 'x')"), data), {"expected a whole number"}},
      {npy_file(1, header("<f4", "False", "(2 3)"), data), {"expected ',' or ')' in the shape"}},
      {npy_file(1, header("<f4", "False", "(99999999999999999999,)"), data),
       {"shape size too large for a 64-bit integer"}},
      {npy_file(1, header("<f4", "False", "(4294967296, 4294967296)"), data),
       {"shape (4294967296,4294967296) has more elements than a 64-bit count holds"}},
      {npy_file(1, header("<f4", "False", "(1000000000000,)"), data),
       {"shape (1000000000000) of '<f4' needs 1000000000000 x 4 data bytes, but the file holds "
        "24 (is the file truncated?)"}},
      {npy_file(1, f4, data + "xx"), {"needs 6 x 4 data bytes, but the file holds 26"}},
      {npy_file(1, "{'descr': '<f4\\n'}", ""), {"escape sequences are not supported"}},
  };
  check_refused(dir, "load_npy", load_npy, cases);
  std::string missing = dir.path("missing.npy");
  check_error([&] { (void)load_npy(missing); },
              {"load_npy: cannot open '" + missing + "': No such file or directory"});
  check_error([&] { save_npy(dir.path("no/dir/x.npy"), ones({1})); },
              {"save_npy: cannot create", "No such file or directory"});
  check_error([&] { save_npy(dir.path("u.npy"), Tensor()); }, {"save_npy: '", "undefined"});
}

TEST_CASE("io/npy: a file cut at any byte, or with bytes flipped, never crashes") {
  TempDir dir("io");
  std::string good = serialize_npy(from_vector({1, 2, 3, 4, 5, 6}, {3, 2}));
  check_cut_and_flipped(dir, "load_npy", good, load_npy);
}
