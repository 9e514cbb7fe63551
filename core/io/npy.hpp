// Reading and writing one tensor in NumPy's .npy format, what np.save writes
// and np.load reads, so arrays move between attograd and Python.
//
// A version 1.0 .npy file starts with a 10-byte preamble: the magic string
// "\x93NUMPY" (6 bytes), the format version as two bytes (1, 0), and the
// header's length as an unsigned 16-bit little-endian integer. The header
// that follows is ASCII text, a Python dict literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// padded with spaces and ended by '\n' so that preamble plus header is a
// multiple of 64 bytes (the data then starts aligned). 'descr' is the
// element type: '<' little-endian, 'f' floating point, 4 bytes ('<f8' is a
// little-endian double); 'fortran_order' False means row-major, last index
// fastest; 'shape' is a tuple, "()" for a 0-dim scalar and "(3,)" for a
// vector (Python needs the comma). The elements follow, numel * 4 (or 8)
// bytes and nothing else. Versions 2.0 and 3.0 differ only in a 4-byte
// header length (and, in 3.0, a UTF-8 header).
//
// save_npy writes version 1.0 (2.0 for a header over 65535 bytes) with '<f4'
// in the float flavor and '<f8' in the double flavor. load_npy reads versions
// 1.0 to 3.0 with '<f4' or '<f8' data (also spelled '=' or '|' for native
// order, which is little-endian here), converted to ag::real, and refuses
// anything else (other dtypes, big-endian data, fortran_order True) with an
// ag::Error naming the file and the problem.
#pragma once

#include <string>
#include <string_view>

#include "core/tensor.hpp"

namespace ag {

void save_npy(const std::string& path, const Tensor& t);
Tensor load_npy(const std::string& path);

// The same in memory: the bytes save_npy writes, and the tensor in bytes of
// a .npy file; `source_name` stands for the file in errors.
std::string serialize_npy(const Tensor& t);
Tensor parse_npy(std::string_view bytes, const std::string& source_name);

}  // namespace ag
