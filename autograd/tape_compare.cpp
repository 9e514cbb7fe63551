// Comparing two tapes (autograd/tape.hpp): the first op whose output, in the
// order the ops ran forward, or whose gradient, in the order backward reached
// them, differs beyond a tolerance.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "autograd/tape.hpp"

namespace ag {

namespace {

struct Difference {
  bool differs = false;
  double max_abs_diff = 0;
  int64_t first = -1;  // flat index of the first element beyond the tolerance
  double a = 0, b = 0;
};

bool agree(double x, double y, const TapeTolerance& tol) {
  if (std::isnan(x) || std::isnan(y)) return std::isnan(x) && std::isnan(y);
  if (std::isinf(x) || std::isinf(y)) return x == y;
  return std::abs(x - y) <= tol.atol + tol.rtol * std::abs(y);
}

// Same shape expected (the callers check).
Difference difference(const Tensor& a, const Tensor& b, const TapeTolerance& tol) {
  Difference d;
  for (int64_t i = 0; i < a.numel(); ++i) {
    const double x = a.data()[i], y = b.data()[i];
    if (std::isfinite(x) && std::isfinite(y))
      d.max_abs_diff = std::max(d.max_abs_diff, std::abs(x - y));
    else if (!agree(x, y, tol))
      d.max_abs_diff = std::numeric_limits<double>::infinity();
    if (!d.differs && !agree(x, y, tol)) {
      d.differs = true;
      d.first = i;
      d.a = x;
      d.b = y;
    }
  }
  return d;
}

std::string line_or(const std::string& line, const char* fallback) {
  return line.empty() ? fallback : line;
}

bool same_op(const TapeOp& x, const TapeOp& y) {
  return x.name == y.name && x.output.shape() == y.output.shape();
}

// Pairs the ops of a and b: one to one when both ran the same ops; otherwise
// the longest run of ops the two have in common, in order, by name and output
// shape (a longest common subsequence), so that a fused op on one side and
// the ops it stands for on the other are passed over, and the ops around them
// compared.
void align(const Tape& a, const Tape& b, TapeComparison& out) {
  const size_t n = a.ops.size(), m = b.ops.size();
  bool same_ops = n == m;
  for (size_t k = 0; same_ops && k < n; ++k) same_ops = same_op(a.ops[k], b.ops[k]);
  if (same_ops) {
    for (size_t k = 0; k < n; ++k) out.pairs.push_back({k, k});
    return;
  }
  if (n * m > 50'000'000) {  // too long to tabulate: pair greedily, in order
    for (size_t i = 0, j = 0; i < n && j < m; ++i) {
      size_t k = j;
      while (k < m && !same_op(a.ops[i], b.ops[k])) ++k;
      if (k < m) out.pairs.push_back({i, k}), j = k + 1;
    }
    return;
  }
  // common[i][j]: how many ops a[i..] and b[j..] have in common, in order.
  std::vector<std::vector<uint32_t>> common(n + 1, std::vector<uint32_t>(m + 1, 0));
  for (size_t i = n; i-- > 0;)
    for (size_t j = m; j-- > 0;)
      common[i][j] = same_op(a.ops[i], b.ops[j])
                         ? common[i + 1][j + 1] + 1
                         : std::max(common[i + 1][j], common[i][j + 1]);
  for (size_t i = 0, j = 0; i < n && j < m;) {
    if (same_op(a.ops[i], b.ops[j]) && common[i][j] == common[i + 1][j + 1] + 1)
      out.pairs.push_back({i, j}), ++i, ++j;
    else if (common[i + 1][j] >= common[i][j + 1])
      ++i;
    else
      ++j;
  }
}

}  // namespace

TapeComparison compare_tapes(const Tape& a, const Tape& b, const TapeTolerance& tol) {
  TapeComparison out;
  std::string report = fmt::format("a: {} ({})\nb: {} ({})\n", a.path, a.summary(), b.path,
                                   b.summary());
  align(a, b, out);
  const bool same_ops = out.pairs.size() == a.ops.size() && a.ops.size() == b.ops.size();
  if (!same_ops)
    report += fmt::format(
        "the tapes ran different ops: {} of a's {} and b's {} paired by name and output shape, "
        "in order; the others are not compared (an op of one run may be several of the other: "
        "a fused kernel and its formula written out, as in fast and reference mode)\n",
        out.pairs.size(), a.ops.size(), b.ops.size());

  // Records the first difference found; returns true when `x` and `y` differ.
  size_t agreeing_tensors = 0;
  auto check = [&](TapeComparison::Kind kind, size_t i, size_t j, const std::string& what,
                   const Tensor& x, const Tensor& y) {
    if (x.shape() != y.shape()) {
      out.kind = kind;
      out.a_op = i;
      out.b_op = j;
      out.tensor = what;
      out.max_abs_diff = std::numeric_limits<double>::infinity();
      report += fmt::format("the first difference: op {} ({}), its {}: shape {} in a, {} in b\n", i,
                            a.ops[i].name, what, shape_str(x.shape()), shape_str(y.shape()));
      return true;
    }
    const Difference d = difference(x, y, tol);
    if (!d.differs) {
      out.largest_agreeing = std::max(out.largest_agreeing, d.max_abs_diff);
      ++agreeing_tensors;
      return false;
    }
    out.kind = kind;
    out.a_op = i;
    out.b_op = j;
    out.tensor = what;
    out.max_abs_diff = d.max_abs_diff;
    out.index = unravel_index(d.first, x.shape());
    out.a_value = d.a;
    out.b_value = d.b;
    report += fmt::format(
        "the first difference: op {} ({}), its {} ({}):\n"
        "  at {}: a {:.7g}, b {:.7g} (max |a - b| over the tensor: {:.3g}; tolerance {:g} + {:g} "
        "|b|)\n",
        i, a.ops[i].name, what, kind == TapeComparison::Kind::forward ? "forward" : "backward",
        position_str(d.first, x.shape()), d.a, d.b, d.max_abs_diff, tol.atol, tol.rtol);
    return true;
  };
  auto lines = [&](size_t i, size_t j, bool backward) {
    const TapeOp &x = a.ops[i], &y = b.ops[j];
    if (backward)
      report += fmt::format("  a: {}\n  b: {}\n", line_or(x.backward_line, "(no backward line)"),
                            line_or(y.backward_line, "(no backward line)"));
    report += fmt::format("  a: {}\n  b: {}\n", line_or(x.forward_line, "(no forward line)"),
                          line_or(y.forward_line, "(no forward line)"));
  };

  // Forward, in the order the ops ran: the leaf inputs they read, then their outputs.
  bool found = false;
  for (const auto& [i, j] : out.pairs) {
    for (const auto& [n, x] : a.ops[i].inputs) {
      auto y = b.ops[j].inputs.find(n);
      if (y == b.ops[j].inputs.end() || x.shape() != y->second.shape()) continue;
      if ((found = check(TapeComparison::Kind::forward, i, j, fmt::format("input {}", n), x,
                         y->second))) {
        report += "  (an input that no op made, a parameter or the data: the two runs did not "
                  "start from the same values)\n";
        break;
      }
    }
    if (!found) found = check(TapeComparison::Kind::forward, i, j, "output", a.ops[i].output,
                              b.ops[j].output);
    if (found) {
      lines(i, j, false);
      break;
    }
  }
  if (!found && out.pairs.empty() && !(a.ops.empty() && b.ops.empty())) {
    out.kind = TapeComparison::Kind::structure;
    report += "the first difference: the runs have no op in common (by name and output shape): "
              "nothing to compare\n";
    if (!a.ops.empty() && !b.ops.empty()) lines(0, 0, false);
    found = true;
  }
  // Backward, in the order it reached the ops (the last op first): the
  // gradient each received, then what it passed to its leaf inputs.
  for (auto it = out.pairs.rbegin(); !found && it != out.pairs.rend(); ++it) {
    const auto [i, j] = *it;
    const TapeOp &x = a.ops[i], &y = b.ops[j];
    if (x.grad_output.defined() && y.grad_output.defined())
      found = check(TapeComparison::Kind::backward, i, j, "grad_output", x.grad_output,
                    y.grad_output);
    for (auto g = x.grad_inputs.begin(); !found && g != x.grad_inputs.end(); ++g) {
      auto h = y.grad_inputs.find(g->first);
      if (h == y.grad_inputs.end() || g->second.shape() != h->second.shape()) continue;
      found = check(TapeComparison::Kind::backward, i, j, fmt::format("grad_input {}", g->first),
                    g->second, h->second);
    }
    if (found) lines(i, j, true);
  }
  if (!found) {
    report += fmt::format(
        "the tapes agree: {} ops paired, {} tensors compared, outputs and gradients within "
        "{:g} + {:g} |b| (largest difference {:.3g})\n",
        out.pairs.size(), agreeing_tensors, tol.atol, tol.rtol, out.largest_agreeing);
  } else if (out.kind != TapeComparison::Kind::structure) {
    report += fmt::format("the {} tensors compared before it agree (largest difference {:.3g})\n",
                          agreeing_tensors, out.largest_agreeing);
  }
  out.report = std::move(report);
  return out;
}

}  // namespace ag
