// Losses: each a forward loop and its closed-form backward side by side.
//
// Notation: x the input (logits, predictions), y the targets, g the upstream
// gradient (a scalar for Mean/Sum, one value per element loss for None), n the
// number of counted elements (Mean only).
#include "layers/framework/loss.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "autograd/node.hpp"
#include "autograd/ops.hpp"
#include "core/creation.hpp"
#include "core/error.hpp"
#include "core/mode.hpp"
#include "core/simd.hpp"
#include "core/softmax_row.hpp"

namespace ag::nn {

namespace {

// Sums the per-element losses (in double) for Mean and Sum; None keeps them.
// Mean divides by `count` (the counted elements), and is 0 when count is 0.
Tensor reduce(const Tensor& losses, Reduction reduction, int64_t count) {
  if (reduction == Reduction::None) return losses;
  double total = 0;
  const real* l = losses.data();
  for (int64_t i = 0, n = losses.numel(); i < n; ++i) total += l[i];
  if (reduction == Reduction::Mean) total = count > 0 ? total / static_cast<double>(count) : 0;
  return scalar(static_cast<real>(total));
}

// The gradient reaching the loss of element i: g[i] for None, g for Sum, g / n
// for Mean (the derivative of reduce).
struct Upstream {
  const real* g;
  bool per_element;
  real shared;  // g or g / n, when not per element
  real at(int64_t i) const { return per_element ? g[i] : shared; }
};

Upstream upstream(const Tensor& g, Reduction reduction, int64_t count) {
  if (reduction == Reduction::None) return {g.data(), true, 0};
  real shared = g.item();
  if (reduction == Reduction::Mean) shared = count > 0 ? shared / static_cast<real>(count) : 0;
  return {g.data(), false, shared};
}

void check_defined(const Tensor& a, const Tensor& b, const char* op, const char* a_name,
                   const char* b_name) {
  AG_CHECK(a.defined(), "{}: {} is an undefined tensor", op, a_name);
  AG_CHECK(b.defined(), "{}: {} is an undefined tensor", op, b_name);
}

// For the elementwise losses: input and target of one shape, and a Mean that is
// defined (over at least one element).
void check_elementwise(const Tensor& input, const Tensor& target, Reduction reduction,
                       const char* op, const char* input_name) {
  check_defined(input, target, op, input_name, "target");
  AG_CHECK(input.shape() == target.shape(),
           "{}: {} {} and target {} must have the same shape (no broadcasting)", op, input_name,
           describe(input), describe(target));
  AG_CHECK(reduction != Reduction::Mean || input.numel() > 0,
           "{}: {} {} has no elements to take the mean of", op, input_name, describe(input));
}

std::string valid_classes(int64_t classes, int64_t ignore_index) {
  return fmt::format("valid: {}, or ignore_index {}",
                     classes > 0 ? fmt::format("0..{}", classes - 1) : "none", ignore_index);
}

// Class count C of an input (..., C) whose targets must be (...).
int64_t check_class_shapes(const Tensor& input, const Tensor& targets, const char* op,
                           const char* input_name) {
  check_defined(input, targets, op, input_name, "targets");
  AG_CHECK(input.dim() >= 1,
           "{}: {} must be (..., C) with the class dim last, got the 0-dim tensor {}", op,
           input_name, describe(input));
  const Shape leading(input.shape().begin(), input.shape().end() - 1);
  AG_CHECK(targets.shape() == leading,
           "{}: targets {} do not match {} {}: expected targets of shape {} ({} are (..., C) with "
           "the class dim last, one class index per row)",
           op, describe(targets), input_name, describe(input), shape_str(leading), input_name);
  return input.shape().back();
}

// The class indices held by `targets` (reals): each a whole number in 0..C-1 or
// ignore_index.
std::vector<int64_t> class_indices(const Tensor& targets, int64_t classes, int64_t ignore_index,
                                   const char* op) {
  std::vector<int64_t> y(targets.numel());
  const real* t = targets.data();
  for (int64_t i = 0, n = targets.numel(); i < n; ++i) {
    const real v = t[i];
    AG_CHECK(std::isfinite(v) && v == std::floor(v),
             "{}: target {} at position {} is not a class index: targets must be whole numbers "
             "({})",
             op, v, position_str(i, targets.shape()), valid_classes(classes, ignore_index));
    const bool representable = std::abs(v) < 0x1p62;  // casting a larger one is undefined
    AG_CHECK(representable && (static_cast<int64_t>(v) == ignore_index ||
                               (v >= 0 && static_cast<int64_t>(v) < classes)),
             "{}: target {} at position {} is out of range for {} classes ({})", op, v,
             position_str(i, targets.shape()), classes, valid_classes(classes, ignore_index));
    y[i] = static_cast<int64_t>(v);
  }
  return y;
}

// The loop of the fused op below over one row of C logits (compiled per
// instruction set, core/simd.hpp): p = softmax(x) by the engine's one softmax
// rule (core/softmax_row.hpp), and logsumexp(x) = max + log sum_c exp(x_c - max),
// the max subtracted so that no exp overflows.
AG_SIMD_CLONES real softmax_and_logsumexp(const real* x, real* p, int64_t C) noexcept {
  const kernel::ExpRow row = kernel::exp_minus_max(x, p, C);
  kernel::divide_by_sum(p, C, row.sum);
  return row.max + std::log(row.sum);
}

// The same over `rows` short rows (C < 8, fewer than sum_lanes' 8 lanes: a
// classifier's few logits), all rows at once, so that the exps vectorize
// across rows (kernel::exp_minus_max_rows). Fills p and logsumexp[r]; sums is
// scratch of `rows`. Compiled for each C, so that the loops over a row unroll.
template <int C>
AG_ALWAYS_INLINE void short_rows_softmax(const real* x, real* p, int64_t rows, real* logsumexp,
                                         real* sums) {
  kernel::exp_minus_max_rows(x, p, rows, C, logsumexp, sums);  // logsumexp holds the maxima
  for (int64_t r = 0; r < rows; ++r) {
    kernel::divide_by_sum(p + r * C, C, sums[r]);
    logsumexp[r] += std::log(sums[r]);
  }
}

AG_SIMD_CLONES void softmax_and_logsumexp_rows(const real* x, real* p, int64_t rows, int64_t C,
                                               real* logsumexp, real* sums) noexcept {
  switch (C) {
    case 1:
      short_rows_softmax<1>(x, p, rows, logsumexp, sums);
      break;
    case 2:
      short_rows_softmax<2>(x, p, rows, logsumexp, sums);
      break;
    case 3:
      short_rows_softmax<3>(x, p, rows, logsumexp, sums);
      break;
    case 4:
      short_rows_softmax<4>(x, p, rows, logsumexp, sums);
      break;
    case 5:
      short_rows_softmax<5>(x, p, rows, logsumexp, sums);
      break;
    case 6:
      short_rows_softmax<6>(x, p, rows, logsumexp, sums);
      break;
    default:
      short_rows_softmax<7>(x, p, rows, logsumexp, sums);
      break;
  }
}

// Fused log-softmax + negative log-likelihood. logits: (rows, C) in memory,
// y: one class index per row; the result has shape `out_shape` (the targets').
// Forward keeps softmax(x_r) of every row: all backward needs.
Tensor cross_entropy_rows(const Tensor& logits, std::vector<int64_t> y, const Shape& out_shape,
                          int64_t ignore_index, Reduction reduction) {
  const int64_t C = logits.shape().back();
  const int64_t rows = static_cast<int64_t>(y.size());
  Tensor losses = Tensor::empty(out_shape);
  Tensor probs = Tensor::empty(logits.shape());
  int64_t count = 0;
  const real* x = logits.data();
  real* p = probs.data();
  real* loss = losses.data();
  const bool short_rows = C >= 1 && C < 8;
  Tensor row_logsumexp, row_sums;
  if (short_rows) {  // every row's softmax at once (ignored rows too: they are not read)
    row_logsumexp = Tensor::empty({rows});
    row_sums = Tensor::empty({rows});
    softmax_and_logsumexp_rows(x, p, rows, C, row_logsumexp.data(), row_sums.data());
  }
  for (int64_t r = 0; r < rows; ++r) {
    if (y[r] == ignore_index) {
      loss[r] = 0;
      continue;
    }
    ++count;
    // loss = -log softmax(x)[y] = logsumexp(x) - x[y]
    const real logsumexp =
        short_rows ? row_logsumexp.data()[r] : softmax_and_logsumexp(x + r * C, p + r * C, C);
    // a row of -inf logits (every class blocked): -log 0 = inf, as nll_loss(log_softmax) gives
    loss[r] = logsumexp == -std::numeric_limits<real>::infinity()
                  ? std::numeric_limits<real>::infinity()
                  : logsumexp - x[r * C + y[r]];
  }
  Tensor out = reduce(losses, reduction, count);
  // d loss_r / d x_rc = softmax(x_r)_c - [c == y_r]
  // dL/dx_rc = (softmax(x_r)_c - onehot(y_r)_c) * g_r   (g_r = g / n for Mean)
  // Ignored rows get 0. logits (..., C) -> gradient (..., C).
  record("CrossEntropyBackward", out, {logits},
         [probs, y = std::move(y), ignore_index, reduction, count](const Tensor& g, const Tensor&) {
           Upstream up = upstream(g, reduction, count);
           const int64_t C = probs.shape().back();
           Tensor grad = Tensor::empty(probs.shape());
           const real* p = probs.data();
           real* dx = grad.data();
           const int64_t rows = static_cast<int64_t>(y.size());
           if (!up.per_element)  // one g for every row (Mean, Sum): one flat loop
             for (int64_t i = 0; i < rows * C; ++i) dx[i] = p[i] * up.shared;
           for (int64_t r = 0; r < rows; ++r) {
             real* d = dx + r * C;
             if (y[r] == ignore_index) {  // (its p may never have been written)
               std::fill(d, d + C, real(0));
               continue;
             }
             const real w = up.at(r);
             if (up.per_element)
               for (int64_t c = 0; c < C; ++c) d[c] = p[r * C + c] * w;
             d[y[r]] -= w;
           }
           return Grads{grad};
         });
  return out;
}

// Negative log-likelihood. log_probs: (rows, C) in memory, y: one class index
// per row; the result has shape `out_shape` (the targets').
Tensor nll_loss_rows(const Tensor& log_probs, std::vector<int64_t> y, const Shape& out_shape,
                     int64_t ignore_index, Reduction reduction) {
  const int64_t C = log_probs.shape().back();
  Tensor losses = Tensor::empty(out_shape);
  int64_t count = 0;
  const real* lp = log_probs.data();
  real* loss = losses.data();
  for (size_t r = 0; r < y.size(); ++r) {
    const bool counted = y[r] != ignore_index;
    count += counted;
    // loss = -log p[y]: the log-probability of the target class, negated
    loss[r] = counted ? -lp[r * C + y[r]] : 0;
  }
  Tensor out = reduce(losses, reduction, count);
  // d loss_r / d lp_rc = -[c == y_r]: only the target's entry gets -g_r
  record("NllLossBackward", out, {log_probs},
         [shape = log_probs.shape(), C, y = std::move(y), ignore_index, reduction, count](
             const Tensor& g, const Tensor&) {
           Upstream up = upstream(g, reduction, count);
           Tensor grad = zeros(shape);
           for (size_t r = 0; r < y.size(); ++r)
             if (y[r] != ignore_index) grad.data()[r * C + y[r]] = -up.at(r);
           return Grads{grad};
         });
  return out;
}

// cross_entropy(x, y) = nll_loss(log_softmax(x, -1), y): written as those two
// ops in reference mode; fused into one op in fast mode (no log-probabilities
// stored, one pass backward).
Tensor cross_entropy_of(const Tensor& logits, std::vector<int64_t> y, const Shape& out_shape,
                        int64_t ignore_index, Reduction reduction) {
  if (reference_mode())
    return nll_loss_rows(log_softmax(logits, -1), std::move(y), out_shape, ignore_index, reduction);
  return cross_entropy_rows(logits, std::move(y), out_shape, ignore_index, reduction);
}

}  // namespace

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  check_elementwise(input, target, reduction, "mse_loss", "input");
  const int64_t n = input.numel();
  Tensor squares = Tensor::empty(input.shape());
  const real* y_hat = input.data();
  const real* y = target.data();
  real* sq = squares.data();
  for (int64_t i = 0; i < n; ++i) {
    const real d = y[i] - y_hat[i];
    sq[i] = d * d;  // (y - y_hat)^2, one per element
  }
  // [F4.10] MSE = 1/n sum (y - y_hat)^2            input, target: (...) -> ()
  Tensor out = reduce(squares, reduction, n);
  // d/dy_hat (y - y_hat)^2 = 2 (y_hat - y);  d/dy (y - y_hat)^2 = -2 (y_hat - y)
  // each times g_i (g / n for Mean)
  record("MseLossBackward", out, {input, target},
         [input, target, reduction, n](const Tensor& g, const Tensor&) {
           Upstream up = upstream(g, reduction, n);
           Tensor d_input = Tensor::empty(input.shape());
           const real* y_hat = input.data();
           const real* y = target.data();
           real* dx = d_input.data();
           for (int64_t i = 0; i < n; ++i) dx[i] = 2 * (y_hat[i] - y[i]) * up.at(i);
           Tensor d_target;
           if (target.requires_grad()) {
             d_target = Tensor::empty(target.shape());
             for (int64_t i = 0; i < n; ++i) d_target.data()[i] = -dx[i];
           }
           return Grads{input.requires_grad() ? d_input : Tensor(), d_target};
         });
  return out;
}

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index,
                     Reduction reduction) {
  const int64_t C = check_class_shapes(logits, targets, "cross_entropy", "logits");
  return cross_entropy_of(logits, class_indices(targets, C, ignore_index, "cross_entropy"),
                          targets.shape(), ignore_index, reduction);
}

Tensor cross_entropy(const Tensor& logits, const std::vector<int64_t>& targets,
                     int64_t ignore_index, Reduction reduction) {
  AG_CHECK(logits.defined(), "cross_entropy: logits is an undefined tensor");
  AG_CHECK(logits.dim() == 2,
           "cross_entropy: a list of class indices needs 2-D logits (N,C), got {}; for other "
           "shapes pass the targets as a tensor of the logits' shape without its last dim",
           describe(logits));
  const int64_t N = logits.shape()[0], C = logits.shape()[1];
  AG_CHECK(static_cast<int64_t>(targets.size()) == N,
           "cross_entropy: {} targets for logits {}: expected one per row, {}", targets.size(),
           describe(logits), N);
  for (size_t i = 0; i < targets.size(); ++i)
    AG_CHECK(targets[i] == ignore_index || (targets[i] >= 0 && targets[i] < C),
             "cross_entropy: target {} at position [{}] is out of range for {} classes ({})",
             targets[i], i, C, valid_classes(C, ignore_index));
  return cross_entropy_of(logits, targets, {N}, ignore_index, reduction);
}

Tensor nll_loss(const Tensor& log_probs, const Tensor& targets, int64_t ignore_index,
                Reduction reduction) {
  const int64_t C = check_class_shapes(log_probs, targets, "nll_loss", "log_probs");
  return nll_loss_rows(log_probs, class_indices(targets, C, ignore_index, "nll_loss"),
                       targets.shape(), ignore_index, reduction);
}

Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& targets,
                                        Reduction reduction) {
  const char* op = "binary_cross_entropy_with_logits";
  check_elementwise(logits, targets, reduction, op, "logits");
  const int64_t n = logits.numel();
  Tensor losses = Tensor::empty(logits.shape());
  const real* x = logits.data();
  const real* y = targets.data();
  real* loss = losses.data();
  // -(y log s + (1-y) log(1-s)), s = sigmoid(x), rewritten so no exp overflows
  // and no log sees 0: loss = max(x,0) - x y + log(1 + exp(-|x|))
  for (int64_t i = 0; i < n; ++i)
    loss[i] = std::max(x[i], real(0)) - x[i] * y[i] + std::log1p(std::exp(-std::abs(x[i])));
  Tensor out = reduce(losses, reduction, n);
  // d loss_i / d x_i = sigmoid(x_i) - y_i;  d loss_i / d y_i = -x_i;  times g_i (g / n for Mean)
  record("BinaryCrossEntropyWithLogitsBackward", out, {logits, targets},
         [logits, targets, reduction, n](const Tensor& g, const Tensor&) {
           Upstream up = upstream(g, reduction, n);
           const real* x = logits.data();
           const real* y = targets.data();
           Tensor d_logits, d_targets;
           if (logits.requires_grad()) {
             d_logits = Tensor::empty(logits.shape());
             for (int64_t i = 0; i < n; ++i) {
               // sigmoid without overflow: exp of a non-positive number only
               const real e = std::exp(-std::abs(x[i]));
               const real s = x[i] >= 0 ? 1 / (1 + e) : e / (1 + e);
               d_logits.data()[i] = (s - y[i]) * up.at(i);
             }
           }
           if (targets.requires_grad()) {
             d_targets = Tensor::empty(targets.shape());
             for (int64_t i = 0; i < n; ++i) d_targets.data()[i] = -x[i] * up.at(i);
           }
           return Grads{d_logits, d_targets};
         });
  return out;
}

}  // namespace ag::nn
