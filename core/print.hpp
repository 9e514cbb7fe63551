// Printing tensors the way PyTorch does, so output can be compared side by side
// with a Python session:
//
//   tensor([[0.1000, 0.2000],
//           [0.3000, 0.4000]], grad_fn=<MulBackward>)
//
// Three ways to get the same text:  ag::to_string(t),  fmt::format("{}", t),
// and  std::cout << t.
//
// The number format follows torch/_tensor_str.py: one format for the whole
// tensor, chosen from its nonzero finite values:
//   - all integers            int mode    tensor([1., 2., 3.])
//   - otherwise               fixed       tensor([0.1000, 2.5000])
//   - spread too wide         scientific  tensor([1.0000e-05, 1.0000e+00])
//     (largest > 1e8, largest / smallest > 1000, or, outside int mode,
//      smallest < 1e-4)
// and every element padded to the widest one so that columns line up.
// Tensors with more than `threshold` elements are summarised: each dim longer
// than 2 * edgeitems shows its first and last `edgeitems` entries around "...".
//
// After the data come, comma-separated: name='W' (attograd's own), then
// grad_fn=<MulBackward> for a tensor an op made, or requires_grad=True for a
// leaf that requires grad. attograd has one element type, so no dtype is shown.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <iosfwd>
#include <string>

#include "core/tensor.hpp"

namespace ag {

// The knobs of torch.set_printoptions with the same defaults.
struct PrintOptions {
  int64_t threshold = 1000;  // summarise when numel() is larger than this
  int64_t edgeitems = 3;     // entries kept at each end of a summarised dim (>= 1)
  int precision = 4;         // digits after the decimal point (fixed and scientific), <= 100
  static constexpr int max_precision = 100;
  int linewidth = 80;        // 1-D rows wrap onto new lines past this many characters
};

// The PyTorch-style text of t; "tensor(undefined)" for an undefined handle.
std::string to_string(const Tensor& t, const PrintOptions& options = {});

std::ostream& operator<<(std::ostream& out, const Tensor& t);

namespace detail {
// The name printed in grad_fn=<...>: core/ cannot look inside a Node (autograd/
// is the floor above), so autograd/node.cpp, linked into every program that
// makes a Node, sets this before main.
extern const char* (*grad_fn_name)(const Node& node);
}  // namespace detail

}  // namespace ag

// fmt::format("{}", t): the same text as ag::to_string(t). No format specs.
template <>
struct fmt::formatter<ag::Tensor> {
  constexpr auto parse(fmt::format_parse_context& ctx) { return ctx.begin(); }
  template <typename FormatContext>
  auto format(const ag::Tensor& t, FormatContext& ctx) const {
    return fmt::format_to(ctx.out(), "{}", ag::to_string(t));
  }
};
