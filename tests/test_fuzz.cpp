// A bounded fuzz test of the file readers: valid .safetensors and .npy files,
// mutated a few thousand times with a fixed seed (cut short, bits flipped,
// bytes inserted or dropped, and the header's fields rewritten: sizes, offsets,
// dtypes, shapes, the header length), must each give an ag::Error or a load
// that is correct: the tensors read back through the writer unchanged, and
// ops on them (a transpose, a sum, printing) work, huge zero-size shapes
// included. Any other exception fails the test; a crash or undefined
// behaviour fails it under `make MODE=asan test`. Runs in well under a
// second (release).
#include <doctest/doctest.h>
#include <unistd.h>

#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "core/io/npy.hpp"
#include "core/io/safetensors.hpp"
#include "tests/helpers.hpp"

namespace {

using namespace ag;
using ag::testing::little_endian;

constexpr uint32_t kFuzzSeed = 0xF022'2024;
constexpr int kMutations = 2500;  // per format

std::mt19937& rng() {
  static std::mt19937 gen(kFuzzSeed);
  return gen;
}
size_t pick(size_t n) { return n == 0 ? 0 : rng()() % n; }
template <typename T>
const T& pick(const std::vector<T>& items) {
  return items[pick(items.size())];
}

// Numbers a header field may be replaced with: the edges of every integer type
// the readers use, fractions, and text too long for any of them.
const std::vector<std::string>& interesting_numbers() {
  static const std::vector<std::string> numbers = {
      "0",          "1",          "2",          "3",          "7",
      "-1",         "-8",         "255",        "65535",      "65536",
      "2147483647", "2147483648", "4294967295", "4294967296", "9007199254740993",
      "4611686018427387904",      "9223372036854775807",    "9223372036854775808",
      "18446744073709551615",     "18446744073709551616",   "1e400",
      "0.5",        "-0",         "1e2",        "99999999999999999999999999999999"};
  return numbers;
}

// Replaces the n-th run of digits in text (n chosen at random) with an
// interesting number.
std::string rewrite_a_number(std::string text) {
  std::vector<std::pair<size_t, size_t>> runs;
  for (size_t i = 0; i < text.size();) {
    if (std::isdigit(static_cast<unsigned char>(text[i]))) {
      size_t j = i;
      while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
      runs.emplace_back(i, j - i);
      i = j;
    } else {
      ++i;
    }
  }
  if (runs.empty()) return text;
  const auto [at, length] = pick(runs);
  return text.replace(at, length, pick(interesting_numbers()));
}

// Replaces one quoted string's content with another from `choices`.
std::string rewrite_a_string(std::string text, char quote, const std::vector<std::string>& choices) {
  std::vector<std::pair<size_t, size_t>> strings;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != quote) continue;
    const size_t end = text.find(quote, i + 1);
    if (end == std::string::npos) break;
    strings.emplace_back(i + 1, end - i - 1);
    i = end;
  }
  if (strings.empty()) return text;
  const auto [at, length] = pick(strings);
  return text.replace(at, length, pick(choices));
}

// The byte-level mutations every format gets.
std::string mutate_bytes(std::string file) {
  switch (pick(5)) {
    case 0:  // cut short
      return file.substr(0, pick(file.size()));
    case 1:  // 1 to 8 bits flipped
      for (size_t k = 0, n = 1 + pick(8); k < n && !file.empty(); ++k)
        file[pick(file.size())] ^= static_cast<char>(1 << pick(8));
      return file;
    case 2:  // bytes inserted
      return file.insert(pick(file.size() + 1), std::string(1 + pick(16), char(pick(256))));
    case 3:  // a stretch dropped
      return file.erase(pick(file.size()), 1 + pick(16));
    default:  // a stretch repeated
    {
      const size_t at = pick(file.size()), n = 1 + pick(32);
      return file.insert(at, file.substr(at, n));
    }
  }
}

// --- .safetensors --------------------------------------------------------------------------

std::string mutate_safetensors(const std::string& good) {
  uint64_t n = 0;
  for (int k = 7; k >= 0; --k) n = (n << 8) | static_cast<unsigned char>(good[k]);
  std::string header = good.substr(8, n), data = good.substr(8 + n);
  static const std::vector<std::string> dtypes = {"F32", "F64", "F16",  "BF16", "I64", "U8",
                                                  "",    "f32", "F32 ", "F6",   "dtype"};
  static const std::vector<std::string> keys = {"dtype", "shape", "data_offsets", "__metadata__",
                                                "w",     "b",     ""};
  switch (pick(8)) {
    case 0:
    case 1:
    case 2:  // a size, an offset or the header length rewritten
      header = rewrite_a_number(header);
      break;
    case 3:  // a dtype or a name changed
      header = rewrite_a_string(header, '"', pick(2) ? dtypes : keys);
      break;
    case 4:  // the header length field, off by a little or a lot
      return little_endian(pick(2) ? n + pick(17) - 8 : rng()() * uint64_t(rng()()), 8) + header +
             data;
    case 5:  // the data section cut or grown
      data = pick(2) ? data.substr(0, pick(data.size() + 1)) : data + std::string(pick(40), 'x');
      break;
    case 6:  // a shape (of any tensor) given a zero and huge other sizes, or a tensor dropped
      if (pick(2)) {
        std::vector<size_t> shapes;
        for (size_t at = header.find("\"shape\":["); at != std::string::npos;
             at = header.find("\"shape\":[", at + 1))
          shapes.push_back(at);
        if (!shapes.empty())
          header.insert(pick(shapes) + 9,
                        pick(2) ? "0," + pick(interesting_numbers()) + "," : "0,");
      } else {
        header = rewrite_a_string(header, '"', {"data_offsets", "shape"});
      }
      break;
    default:
      return mutate_bytes(good);
  }
  return little_endian(header.size(), 8) + header + data;
}

// --- .npy -----------------------------------------------------------------------------------

std::string mutate_npy(const std::string& good) {
  const size_t length = static_cast<unsigned char>(good[8]) | static_cast<unsigned char>(good[9]) << 8;
  std::string header = good.substr(10, length), data = good.substr(10 + length);
  std::string version = good.substr(6, 2);
  static const std::vector<std::string> descrs = {"<f4", "<f8", ">f4", "|u1", "<f2", "<c8",
                                                  "=f8", "<f",  "",    "<i8", std::string("<f\0", 3)};
  switch (pick(8)) {
    case 0:
    case 1:
    case 2:  // a size of the shape rewritten
      header = rewrite_a_number(header);
      break;
    case 3:  // the dtype
      header = rewrite_a_string(header, '\'', descrs);
      break;
    case 4:  // fortran_order, or the dict's syntax
      if (const size_t at = header.find("False"); at != std::string::npos)
        header.replace(at, 5, pick(std::vector<std::string>{"True", "false", "0", "None", "Fals"}));
      break;
    case 5:  // the version, and with it the header length's width
      version[0] = static_cast<char>(pick(5));
      version[1] = static_cast<char>(pick(3) == 0 ? 1 : 0);
      break;
    case 6:  // a zero and huge sizes in the shape (and no data, or the old), or the data cut or grown
      if (pick(2)) {
        if (const size_t at = header.find("'shape': ("); at != std::string::npos)
          header.insert(at + 10, "0, " + pick(interesting_numbers()) + ", ");
        if (pick(2)) data.clear();
      } else {
        data = pick(2) ? data.substr(0, pick(data.size() + 1)) : data + std::string(pick(40), 'y');
      }
      break;
    default:
      return mutate_bytes(good);
  }
  const int width = version[0] == 1 ? 2 : 4;
  return "\x93NUMPY" + version + little_endian(header.size(), width) + header + data;
}

// What a correct load must satisfy: the writer reproduces it, and ops run on it.
void check_loaded(const std::vector<std::pair<std::string, Tensor>>& tensors) {
  const std::string again = serialize_safetensors(tensors);
  std::map<std::string, Tensor> reread;
  for (const auto& [name, t] : parse_safetensors(again, "again")) reread[name] = t;
  REQUIRE(reread.size() == tensors.size());
  for (const auto& [name, t] : tensors) {
    const Tensor& back = reread.at(name);
    CHECK(back.shape() == t.shape());
    CHECK((t.numel() == 0 || std::memcmp(back.data(), t.data(), t.numel() * sizeof(real)) == 0));
    CHECK(t.numel() == shape_numel(t.shape()));
    if (t.dim() >= 2) CHECK(transpose(t, 0, -1).numel() == t.numel());
    (void)sum(t);
    (void)to_string(t);
  }
}

// Loads every mutation; counts how many loaded and how many were refused.
template <typename Mutate, typename Load>
void fuzz(const std::string& good, Mutate mutate, Load load, const char* op) {
  int loaded = 0, refused = 0;
  std::vector<std::string> examples;
  for (int i = 0; i < kMutations; ++i) {
    const std::string file = mutate(good);
    try {
      check_loaded(load(file));
      ++loaded;
    } catch (const Error& e) {
      ++refused;
      const std::string message = e.what();
      // Every refusal names the function and the file, and no NUL cut it short.
      if (message.rfind(std::string(op) + ": 'fuzzed': ", 0) != 0 && examples.size() < 5)
        examples.push_back(message);
    } catch (const std::exception& e) {
      FAIL("mutation " << i << ": " << typeid(e).name() << " instead of ag::Error: " << e.what());
    }
  }
  INFO("refusals not naming the function and the file: " << examples.size());
  for (const std::string& e : examples) INFO(e);
  CHECK(examples.empty());
  // Both outcomes happen many times: the mutations are neither all harmless nor all fatal.
  INFO(loaded << " loaded, " << refused << " refused");
  CHECK(loaded > kMutations / 20);
  CHECK(refused > kMutations / 2);
}

}  // namespace

TEST_CASE("io/fuzz: mutated .safetensors files give an ag::Error or a correct load") {
  Generator gen(1);
  const std::string good = serialize_safetensors(
      {{"w", randn({2, 3}, gen)}, {"b", randn({3}, gen)}, {"e", zeros({0, 4})}}, {{"k", "v"}});
  fuzz(good, mutate_safetensors,
       [](const std::string& file) { return parse_safetensors(file, "fuzzed"); },
       "parse_safetensors");
}

TEST_CASE("io/fuzz: mutated .npy files give an ag::Error or a correct load") {
  Generator gen(2);
  const std::string good = serialize_npy(randn({3, 2, 2}, gen));
  fuzz(good, mutate_npy,
       [](const std::string& file) {
         return std::vector<std::pair<std::string, Tensor>>{{"t", parse_npy(file, "fuzzed")}};
       },
       "parse_npy");
}

TEST_CASE("io/fuzz: mutated files on disk go through load_safetensors and load_npy the same way") {
  const std::string dir = std::filesystem::temp_directory_path() /
                          fmt::format("attograd_fuzz_{}_{}", real_name, ::getpid());
  std::filesystem::create_directories(dir);
  const std::string good_st = serialize_safetensors({{"w", ones({2, 2})}});
  const std::string good_npy = serialize_npy(ones({4}));
  int refused = 0;
  for (int i = 0; i < 200; ++i) {
    // A new name each time: rewriting one file in place makes ext4 flush it to the disk.
    const std::string st = fmt::format("{}/m{}.safetensors", dir, i);
    const std::string npy = fmt::format("{}/m{}.npy", dir, i);
    std::ofstream(st, std::ios::binary) << mutate_safetensors(good_st);
    std::ofstream(npy, std::ios::binary) << mutate_npy(good_npy);
    try {
      check_loaded(load_safetensors(st));
    } catch (const Error& e) {
      ++refused;
      CHECK(std::string(e.what()).rfind("load_safetensors: '" + st + "': ", 0) == 0);
    }
    try {
      (void)sum(load_npy(npy));
    } catch (const Error& e) {
      ++refused;
      CHECK(std::string(e.what()).rfind("load_npy: '" + npy + "': ", 0) == 0);
    }
  }
  std::filesystem::remove_all(dir);
  CHECK(refused > 100);
}
