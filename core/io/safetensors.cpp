#include "core/io/safetensors.hpp"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <tuple>
#include <type_traits>

#include "core/error.hpp"
#include "core/io/file_bytes.hpp"
#include "core/io/json.hpp"

namespace ag {

namespace {

using namespace file_bytes;  // decode, fail, out_of_range, read_file, Where, write_file

// The reference implementation refuses larger headers; so do we. No real
// model comes close (about 100 bytes per tensor).
constexpr uint64_t max_header_bytes = 100'000'000;
// A bound on the values in a header, so that a 100 MB header of "[0,0,0,..."
// cannot make the parsed tree (128 bytes a value) take gigabytes. A tensor
// takes about 10 values, so this still allows 200,000 tensors.
constexpr size_t max_header_values = 2'000'000;

constexpr const char* stored_dtype = std::is_same_v<real, float> ? "F32" : "F64";

using StringMap = std::map<std::string, std::string>;

// A name as errors show it; cut short, as a hostile file may hold a huge one.
std::string show(std::string_view name) {
  if (name.size() <= 64) return fmt::format("'{}'", file_bytes::escaped(name));
  return fmt::format("'{}...'", file_bytes::escaped(name.substr(0, 60)));
}

std::string serialize(const Where& where, const NamedTensors& tensors, const StringMap& metadata) {
  auto check_utf8 = [&](const std::string& text, const char* what) {
    if (json::find_invalid_utf8(text) != std::string_view::npos)
      fail(where, fmt::format("{} {} is not valid UTF-8", what, show(text)));
  };
  // Sorted by name, so the same tensors always give the same bytes.
  std::vector<const std::pair<std::string, Tensor>*> order;
  for (const auto& entry : tensors) order.push_back(&entry);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->first < b->first; });
  for (size_t i = 0; i < order.size(); ++i) {
    const auto& [name, t] = *order[i];
    if (i > 0 && order[i - 1]->first == name)
      fail(where, fmt::format("the name {} is used twice", show(name)));
    if (name == "__metadata__") fail(where, "'__metadata__' is reserved, not a tensor name");
    check_utf8(name, "tensor name");
    if (!t.defined()) fail(where, fmt::format("tensor {} is undefined", show(name)));
  }

  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    for (const auto& [key, value] : metadata) {
      check_utf8(key, "metadata key");
      check_utf8(value, "metadata value");
      if (header.back() != '{') header += ',';
      header += json::quote(key) + ":" + json::quote(value);
    }
    header += '}';
  }
  uint64_t offset = 0;
  for (const auto* entry : order) {
    const Tensor& t = entry->second;
    uint64_t end = offset + static_cast<uint64_t>(t.numel()) * sizeof(real);
    if (header.size() > 1) header += ',';
    header += fmt::format("{}:{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
                          json::quote(entry->first), stored_dtype, fmt::join(t.shape(), ","),
                          offset, end);
    offset = end;
  }
  header += '}';
  header.append((8 - header.size() % 8) % 8, ' ');  // the data section starts 8-byte aligned

  std::string out;
  out.reserve(8 + header.size() + offset);
  for (int k = 0; k < 8; ++k) out += static_cast<char>((uint64_t(header.size()) >> (8 * k)) & 0xFF);
  out += header;
  for (const auto* entry : order) {
    const Tensor& t = entry->second;
    if (t.numel() > 0)
      out.append(reinterpret_cast<const char*>(t.data()), t.numel() * sizeof(real));
  }
  return out;
}

// One tensor as the header describes it, checked against itself.
struct Entry {
  std::string name;
  size_t element_bytes = 0;  // 4 for F32, 8 for F64
  Shape shape;
  uint64_t begin = 0, end = 0;
};

// A size or offset from the header: a whole number >= 0 that fits int64.
uint64_t whole_number(const Where& where, const json::Value& v, const std::string& what) {
  if (v.kind != json::Value::Kind::Number)
    fail(where, fmt::format("{} is {}, expected a whole number", what, json::kind_name(v.kind)));
  if (!v.is_integer) {
    bool fraction = v.string.find_first_of(".eE") != std::string::npos;
    fail(where, fmt::format("{} is {}, {}", what, v.string,
                            fraction ? "not a whole number" : "too large for a 64-bit integer"));
  }
  if (v.integer < 0) fail(where, fmt::format("{} is {}, negative", what, v.integer));
  return static_cast<uint64_t>(v.integer);
}

const json::Value& member(const Where& where, const json::Value& entry, const std::string& who,
                          const char* key, json::Value::Kind kind) {
  const json::Value* v = entry.find(key);
  if (!v) fail(where, fmt::format("{} has no \"{}\"", who, key));
  if (v->kind != kind)
    fail(where, fmt::format("{}: \"{}\" is {}, expected {}", who, key, json::kind_name(v->kind),
                            json::kind_name(kind)));
  return *v;
}

Entry read_entry(const Where& where, const std::string& name, const json::Value& v,
                 uint64_t data_bytes) {
  using Kind = json::Value::Kind;
  Entry e;
  e.name = name;
  std::string who = "tensor " + show(name);
  if (v.kind != Kind::Object)
    fail(where, fmt::format("{} is described by {}, expected an object", who, kind_name(v.kind)));

  const std::string& dtype = member(where, v, who, "dtype", Kind::String).string;
  if (dtype == "F32") {
    e.element_bytes = 4;
  } else if (dtype == "F64") {
    e.element_bytes = 8;
  } else {
    fail(where, fmt::format("{} has dtype {}, which attograd cannot load (only F32 and F64)", who,
                            show(dtype)));
  }

  const json::Value& shape = member(where, v, who, "shape", Kind::Array);
  uint64_t numel = 1;
  for (size_t d = 0; d < shape.items.size(); ++d) {
    uint64_t size = whole_number(where, shape.items[d], fmt::format("{}: shape[{}]", who, d));
    e.shape.push_back(static_cast<int64_t>(size));
    if (__builtin_mul_overflow(numel, size, &numel) || numel > uint64_t(INT64_MAX))
      fail(where, fmt::format("{}: shape {} has more elements than a 64-bit count holds", who,
                              shape_str(e.shape)));
  }
  // A zero-size tensor too: (0, 2^62, 2^62) has no elements but strides past int64.
  if (std::string problem = shape_problem(e.shape); !problem.empty())
    fail(where, who + ": " + problem);

  const json::Value& offsets = member(where, v, who, "data_offsets", Kind::Array);
  if (offsets.items.size() != 2)
    fail(where, fmt::format("{}: data_offsets has {} items, expected [begin, end]", who,
                            offsets.items.size()));
  e.begin = whole_number(where, offsets.items[0], who + ": data_offsets begin");
  e.end = whole_number(where, offsets.items[1], who + ": data_offsets end");
  std::string span = fmt::format("data_offsets [{}, {}]", e.begin, e.end);
  if (e.end < e.begin) fail(where, fmt::format("{}: {} end before begin", who, span));
  if (e.end > data_bytes)
    fail(where, fmt::format("{}: {} run past the data section's {} bytes (is the file truncated?)",
                            who, span, data_bytes));
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(numel, uint64_t(e.element_bytes), &bytes) || bytes != e.end - e.begin)
    fail(where,
         fmt::format("{}: shape {} of {} needs {} x {} bytes, but {} hold {} bytes", who,
                     shape_str(e.shape), dtype, numel, e.element_bytes, span, e.end - e.begin));
  return e;
}

NamedTensors parse(const Where& where, std::string_view bytes, StringMap* metadata_out) {
  if (bytes.size() < 8)
    fail(where, fmt::format("the file has {} bytes, too short for the 8-byte header length",
                            bytes.size()));
  uint64_t n = 0;
  for (int k = 7; k >= 0; --k) n = (n << 8) | static_cast<unsigned char>(bytes[k]);
  if (n > max_header_bytes)
    fail(where, fmt::format("header length {} is over the {}-byte limit (not a safetensors file?)",
                            n, max_header_bytes));
  if (n > bytes.size() - 8)
    fail(where, fmt::format("header length {} is more than the {} bytes that follow it (is the "
                            "file truncated?)",
                            n, bytes.size() - 8));
  std::string_view header = bytes.substr(8, n);
  std::string_view data = bytes.substr(8 + n);

  if (size_t bad = json::find_invalid_utf8(header); bad != std::string_view::npos)
    fail(where, fmt::format("header is not valid UTF-8 (byte {} of the header)", bad));
  json::Value root;
  try {
    root = json::parse(header, json::Limits{.max_values = max_header_values});
  } catch (const Error& e) {
    std::string_view message = e.what();
    if (message.starts_with("json: ")) message.remove_prefix(6);
    fail(where, fmt::format("header is not valid JSON: {} of the header", message));
  }
  if (root.kind != json::Value::Kind::Object)
    fail(where, fmt::format("header is {}, expected a JSON object", json::kind_name(root.kind)));

  std::vector<Entry> entries;
  StringMap metadata;
  for (const auto& [name, value] : root.members) {
    if (name != "__metadata__") {
      entries.push_back(read_entry(where, name, value, data.size()));
      continue;
    }
    if (value.kind != json::Value::Kind::Object)
      fail(where, fmt::format("__metadata__ is {}, expected an object of strings",
                              json::kind_name(value.kind)));
    for (const auto& [key, text] : value.members) {
      if (text.kind != json::Value::Kind::String)
        fail(where, fmt::format("__metadata__ {} is {}, expected a string", show(key),
                                json::kind_name(text.kind)));
      metadata[key] = text.string;
    }
  }

  // The regions must tile the data section: sorted by offset, each begins
  // where the previous one ended, and the last ends at the end of the file.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.begin, a.end, a.name) < std::tie(b.begin, b.end, b.name);
  });
  uint64_t covered = 0;
  for (size_t i = 0; i < entries.size(); ++i) {
    const Entry& e = entries[i];
    if (e.begin < covered)
      fail(where, fmt::format("tensor {} (data_offsets [{}, {}]) overlaps tensor {} ([{}, {}])",
                              show(e.name), e.begin, e.end, show(entries[i - 1].name),
                              entries[i - 1].begin, entries[i - 1].end));
    if (e.begin > covered)
      fail(where, fmt::format("gap in the data section: bytes [{}, {}) belong to no tensor",
                              covered, e.begin));
    covered = e.end;
  }
  if (covered != data.size())
    fail(where, fmt::format("the data section has {} bytes but the tensors cover {} (trailing "
                            "bytes after the last tensor)",
                            data.size(), covered));

  // Only now, with every size checked against the file, allocate.
  NamedTensors out;
  out.reserve(entries.size());
  for (const Entry& e : entries) {
    Tensor t = Tensor::empty(e.shape);
    const char* src = data.data() + e.begin;
    size_t n = static_cast<size_t>(t.numel());
    size_t converted =
        e.element_bytes == 4 ? decode<float>(src, n, t.data()) : decode<double>(src, n, t.data());
    if (converted < n) fail(where, "tensor " + show(e.name) + ": " + out_of_range(src, converted));
    t.set_name(e.name);
    out.emplace_back(e.name, std::move(t));
  }
  if (metadata_out) *metadata_out = std::move(metadata);
  return out;
}

}  // namespace

std::string serialize_safetensors(const NamedTensors& tensors, const StringMap& metadata) {
  return serialize(Where{"serialize_safetensors", ""}, tensors, metadata);
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const StringMap& metadata) {
  Where where{"save_safetensors", path};
  write_file(where.op, path, serialize(where, tensors, metadata));
}

NamedTensors parse_safetensors(std::string_view bytes, const std::string& source_name,
                               StringMap* metadata) {
  return parse(Where{"parse_safetensors", source_name}, bytes, metadata);
}

NamedTensors load_safetensors(const std::string& path, StringMap* metadata) {
  Where where{"load_safetensors", path};
  return parse(where, read_file(where.op, path), metadata);
}

}  // namespace ag
