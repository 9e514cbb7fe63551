// The text of a tensor, rule for rule as torch/_tensor_str.py (PyTorch 1.13-2.x)
// writes it, so that a learner can compare attograd's output with PyTorch's by
// eye. The function names below mirror the Python ones.
#include "core/print.hpp"

#include <algorithm>
#include <cmath>
#include <ostream>

#include "core/error.hpp"

namespace ag {

// Set by autograd/node.cpp (core/print.hpp).
const char* (*detail::grad_fn_name)(const Node& node) = nullptr;

namespace {

// The prefix every line of the data is aligned under.
constexpr int prefix_length = 7;  // "tensor("

// One number format for all elements of a tensor, so that columns line up
// (torch's _Formatter).
struct Formatter {
  enum class Mode { integer, fixed, scientific };
  Mode mode = Mode::integer;
  int precision = 4;
  size_t width = 1;  // of the widest nonzero finite value; others are padded to it

  std::string unpadded(double value) const {
    // fmt writes a NaN with its sign bit as "-nan" (0 * inf makes one on x86);
    // Python always writes "nan".
    if (std::isnan(value)) return "nan";
    switch (mode) {
      case Mode::integer:
        // The "." says "this is a float that happens to be whole": 2. not 2.
        return fmt::format("{:.0f}", value) + (std::isfinite(value) ? "." : "");
      case Mode::fixed:
        return fmt::format("{:.{}f}", value, precision);
      case Mode::scientific:
        return fmt::format("{:.{}e}", value, precision);
    }
    return "";
  }

  std::string format(double value) const {
    std::string text = unpadded(value);
    if (text.size() < width) text.insert(0, width - text.size(), ' ');
    return text;
  }
};

// Picks the mode from the nonzero finite values only: zeros, nan and inf fit
// any mode and do not count toward the width either (as in PyTorch).
Formatter choose_formatter(const std::vector<double>& values, int precision) {
  Formatter f;
  f.precision = precision;
  double min_abs = INFINITY, max_abs = 0;
  bool all_integers = true;
  for (double v : values) {
    if (v == 0 || !std::isfinite(v)) continue;
    min_abs = std::min(min_abs, std::abs(v));
    max_abs = std::max(max_abs, std::abs(v));
    if (v != std::ceil(v)) all_integers = false;
  }
  if (max_abs == 0) return f;  // nothing but zeros, nan and inf: "0.", "nan"

  // A wide spread of magnitudes would make fixed notation either lose the
  // small values or print very long numbers.
  bool wide = max_abs / min_abs > 1000.0 || max_abs > 1.0e8;
  if (all_integers)
    f.mode = wide ? Formatter::Mode::scientific : Formatter::Mode::integer;
  else
    f.mode = (wide || min_abs < 1.0e-4) ? Formatter::Mode::scientific : Formatter::Mode::fixed;

  for (double v : values)
    if (v != 0 && std::isfinite(v)) f.width = std::max(f.width, f.unpadded(v).size());
  return f;
}

// Walks the elements that are shown: every index of every dim, or, when
// summarising, the first and last `edgeitems` of each dim longer than twice
// that, with "..." (index -1 in shown_indices) between them.
class TensorPrinter {
 public:
  TensorPrinter(const Tensor& t, const PrintOptions& options)
      : t_(t), options_(options), strides_(contiguous_strides(t.shape())) {
    bool summarize = t.numel() > options.threshold;
    for (int64_t size : t.shape()) {
      std::vector<int64_t> indices;
      // size > 2 * edgeitems, without the product (a huge edgeitems would overflow it)
      bool shorten =
          summarize && options.edgeitems < size && size - options.edgeitems > options.edgeitems;
      for (int64_t i = 0; i < size; ++i) {
        if (shorten && i == options.edgeitems) {
          indices.push_back(-1);
          i = size - options.edgeitems;
        }
        indices.push_back(i);
      }
      shown_indices_.push_back(std::move(indices));
    }
    std::vector<double> values;
    collect_shown(0, 0, values);
    formatter_ = choose_formatter(values, options.precision);
  }

  // "[[1., 2.],\n        [3., 4.]]" or, for a 0-dim tensor, "3.5000".
  std::string data_text() const {
    std::string out;
    write(0, 0, prefix_length, out);
    return out;
  }

 private:
  void collect_shown(size_t dim, int64_t offset, std::vector<double>& values) const {
    if (dim == shown_indices_.size()) {
      values.push_back(t_.data()[offset]);
      return;
    }
    for (int64_t i : shown_indices_[dim])
      if (i >= 0) collect_shown(dim + 1, offset + i * strides_[dim], values);
  }

  // Sub-tensors are separated by one line break per remaining dim beyond the
  // first: rows of a matrix by one, matrices of a 3-D tensor by a blank line.
  void write(size_t dim, int64_t offset, int indent, std::string& out) const {
    size_t ndim = shown_indices_.size();
    if (dim == ndim) {
      out += formatter_.format(t_.data()[offset]);
      return;
    }
    if (dim + 1 == ndim) {
      write_row(offset, indent, out);
      return;
    }
    std::string separator = "," + std::string(ndim - dim - 1, '\n') + std::string(indent + 1, ' ');
    out += '[';
    bool first = true;
    for (int64_t i : shown_indices_[dim]) {
      if (!first) out += separator;
      first = false;
      if (i < 0)
        out += "...";
      else
        write(dim + 1, offset + i * strides_[dim], indent + 1, out);
    }
    out += ']';
  }

  // The innermost dim: as many elements per line as fit in linewidth.
  void write_row(int64_t offset, int indent, std::string& out) const {
    int64_t element_length = static_cast<int64_t>(formatter_.width) + 2;  // ", "
    int64_t per_line = std::max<int64_t>(1, (options_.linewidth - indent) / element_length);
    out += '[';
    int64_t count = 0;
    for (int64_t i : shown_indices_.back()) {
      if (count > 0) out += count % per_line == 0 ? ",\n" + std::string(indent + 1, ' ') : ", ";
      out += i < 0 ? " ..." : formatter_.format(t_.data()[offset + i]);
      ++count;
    }
    out += ']';
  }

  const Tensor& t_;
  const PrintOptions& options_;
  std::vector<int64_t> strides_;
  std::vector<std::vector<int64_t>> shown_indices_;
  Formatter formatter_;
};

// Python's str(tuple(shape)) as PyTorch shows it: "(0, 3)".
std::string python_tuple(const Shape& shape) { return fmt::format("({})", fmt::join(shape, ", ")); }

// Appends ", suffix" after the data, or starts a new line (aligned under the
// data) when the suffix would pass linewidth (torch's _add_suffixes).
std::string add_suffixes(std::string text, const std::vector<std::string>& suffixes,
                         int linewidth) {
  size_t last_newline = text.rfind('\n');
  // Length of the last line plus 2, the quantity PyTorch compares.
  size_t last_line_length =
      last_newline == std::string::npos ? text.size() + 2 : text.size() - last_newline + 1;
  for (const std::string& suffix : suffixes) {
    if (last_line_length + suffix.size() + 2 > static_cast<size_t>(linewidth)) {
      text += ",\n" + std::string(prefix_length, ' ') + suffix;
      last_line_length = prefix_length + suffix.size();
    } else {
      text += ", " + suffix;
      last_line_length += suffix.size() + 2;
    }
  }
  return text + ")";
}

}  // namespace

std::string to_string(const Tensor& t, const PrintOptions& options) {
  // A double has 17 significant digits: more than max_precision digits after the
  // point show nothing, and a precision of 2^31 would ask for gigabytes of zeros.
  AG_CHECK(options.edgeitems >= 1 && options.threshold >= 0 && options.precision >= 0 &&
               options.precision <= PrintOptions::max_precision && options.linewidth >= 1,
           "to_string: invalid PrintOptions (threshold {}, edgeitems {}, precision {}, linewidth "
           "{}): need threshold >= 0, edgeitems >= 1, 0 <= precision <= {}, linewidth >= 1",
           options.threshold, options.edgeitems, options.precision, options.linewidth,
           PrintOptions::max_precision);
  if (!t.defined()) return "tensor(undefined)";

  std::vector<std::string> suffixes;
  std::string text = "tensor(";
  if (t.numel() == 0) {
    text += "[]";
    // A (0,) tensor is simply [], any other empty shape must be stated.
    if (t.dim() != 1) suffixes.push_back("size=" + python_tuple(t.shape()));
  } else {
    text += TensorPrinter(t, options).data_text();
  }
  if (!t.name().empty()) suffixes.push_back(fmt::format("name='{}'", t.name()));
  if (t.grad_fn())
    suffixes.push_back(fmt::format("grad_fn=<{}>", detail::grad_fn_name(*t.grad_fn())));
  else if (t.requires_grad())
    suffixes.push_back("requires_grad=True");
  return add_suffixes(std::move(text), suffixes, options.linewidth);
}

std::ostream& operator<<(std::ostream& out, const Tensor& t) { return out << to_string(t); }

}  // namespace ag
