#include "autograd/gradcheck.hpp"

#include <cmath>

#include "autograd/grad_mode.hpp"
#include "autograd/ops.hpp"
#include "core/creation.hpp"
#include "core/error.hpp"
#include "core/kernels.hpp"

namespace ag {

namespace {

// L = sum(v * f(x)) in double, for the finite differences.
double weighted_output(const GradcheckFunction& f, const std::vector<Tensor>& xs, const Tensor& v) {
  Tensor out = f(xs);
  AG_CHECK(out.defined() && out.shape() == v.shape(),
           "gradcheck: the function's output was {} at the first call and {} when an input was "
           "perturbed; gradcheck needs f to give the same shape every time",
           shape_str(v.shape()), describe(out));
  double total = 0;
  for (int64_t i = 0; i < out.numel(); ++i) total += double(out.data()[i]) * double(v.data()[i]);
  return total;
}

}  // namespace

GradcheckResult gradcheck(const GradcheckFunction& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options) {
  // A zero or non-finite step gives 0/0 quotients, a NaN tolerance passes nothing.
  AG_CHECK(std::isfinite(options.eps) && options.eps > 0 && std::isfinite(options.rtol) &&
               options.rtol >= 0 && std::isfinite(options.atol) && options.atol >= 0,
           "gradcheck: invalid options eps {}, rtol {}, atol {}: need a finite eps > 0 and finite "
           "tolerances >= 0",
           options.eps, options.rtol, options.atol);
  // Work on copies so the caller's tensors and their .grad stay untouched.
  std::vector<Tensor> xs;
  for (const Tensor& x : inputs) {
    Tensor copy = x.detach();
    if (x.requires_grad()) copy.requires_grad_(true);
    xs.push_back(copy);
  }

  Tensor out = f(xs);
  AG_CHECK(out.requires_grad(),
           "gradcheck: the function's output {} does not require grad; give at least one input "
           "requires_grad and make sure f uses it",
           describe(out));
  Generator gen(options.seed);
  Tensor v = randn(out.shape(), gen);
  sum(mul(out, v)).backward();

  GradcheckResult result;
  double worst_excess = -INFINITY;
  bool compared_any = false;
  for (size_t i = 0; i < xs.size(); ++i) {
    Tensor& x = xs[i];
    if (!x.requires_grad()) continue;
    Tensor analytic = x.grad().defined() ? x.grad() : zeros_like(x);
    NoGradGuard no_grad;  // perturbing in place is allowed, and nothing is recorded
    for (int64_t j = 0; j < x.numel(); ++j) {
      const real saved = x.data()[j];
      x.data()[j] = static_cast<real>(saved + options.eps);
      double plus = weighted_output(f, xs, v);
      x.data()[j] = static_cast<real>(saved - options.eps);
      double minus = weighted_output(f, xs, v);
      x.data()[j] = saved;
      double numeric = (plus - minus) / (2 * options.eps);
      double a = analytic.data()[j];
      double error = std::abs(a - numeric);
      double allowed = options.atol + options.rtol * std::abs(numeric);
      double excess = std::isfinite(error) ? error - allowed : INFINITY;
      compared_any = true;
      if (excess > worst_excess) {
        worst_excess = excess;
        result.input = i;
        result.flat_index = j;
        result.analytic = a;
        result.numeric = numeric;
      }
    }
  }
  result.ok = worst_excess <= 0;
  if (!compared_any) {  // every input that requires grad is empty
    result.message = "gradcheck passed: the inputs that require grad have no elements";
    return result;
  }
  const Tensor& worst = xs[result.input];
  result.message = fmt::format(
      "gradcheck {}: worst entry is input {} {}, element {}: analytic {:.10g} vs numeric "
      "{:.10g} (difference {:.3g}, allowed {:.3g})",
      result.ok ? "passed" : "FAILED", result.input, describe(worst),
      position_str(result.flat_index, worst.shape()), result.analytic, result.numeric,
      std::abs(result.analytic - result.numeric),
      options.atol + options.rtol * std::abs(result.numeric));
  return result;
}

}  // namespace ag
