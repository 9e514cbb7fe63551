// Reading and writing named tensors in the .safetensors format (Hugging Face),
// the format PyTorch models are shared in, so weights move between attograd
// and PyTorch by name.
//
// A .safetensors file is three parts. First 8 bytes: N, the header's length,
// an unsigned 64-bit integer stored little-endian (least significant byte
// first). Then N bytes of UTF-8 JSON, the header: an object mapping each
// tensor's name to {"dtype": "F32", "shape": [2,3], "data_offsets": [0,24]},
// plus an optional "__metadata__" object of string-to-string pairs (free-form
// notes such as {"format": "pt"}). The header is padded with spaces so that
// the third part, the data section, starts at a multiple of 8 bytes (a reader
// may then map the file and use the numbers in place). The data section holds
// every tensor's elements back to back, little-endian, row-major, with no
// gaps: `data_offsets` [begin, end) are byte positions counted from the start
// of the data section, so a (2,3) F32 tensor at the start takes [0, 24).
//
// The writer sorts tensors by name, writes dtype "F32" (float flavor) or "F64"
// (double flavor), and produces the same bytes for the same input. The reader
// accepts F32 and F64 (converted to ag::real) and checks everything a
// corrupt or hostile file could get wrong before it allocates or reads a
// byte of data; each problem is an ag::Error naming the file.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/tensor.hpp"

namespace ag {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// Writes `tensors` (names unique, valid UTF-8, not "__metadata__") to `path`.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// The tensors in `path`, in the order of their data offsets, each named after
// its key. When `metadata` is given, the file's "__metadata__" is stored in it.
NamedTensors load_safetensors(const std::string& path,
                              std::map<std::string, std::string>* metadata = nullptr);

// The same in memory: the bytes save_safetensors writes, and the tensors in
// bytes of a .safetensors file; `source_name` stands for the file in errors.
std::string serialize_safetensors(const NamedTensors& tensors,
                                  const std::map<std::string, std::string>& metadata = {});
NamedTensors parse_safetensors(std::string_view bytes, const std::string& source_name,
                               std::map<std::string, std::string>* metadata = nullptr);

}  // namespace ag
