#include "autograd/gradcheck.hpp"

#include <cmath>
#include <string_view>

#include "autograd/grad_mode.hpp"
#include "autograd/node.hpp"
#include "autograd/ops.hpp"
#include "core/creation.hpp"
#include "core/error.hpp"
#include "core/kernels.hpp"

namespace ag {

namespace {

using NamedTensorList = std::vector<std::pair<std::string, Tensor>>;

// How a public entry names itself and the tensors it checks, in its messages.
struct Entry {
  std::string_view function;       // "gradcheck"
  std::string_view tensors;        // "inputs that require grad"
  std::string_view output_advice;  // what to do when the output does not require grad
};

void check_options(std::string_view function, const GradcheckOptions& options) {
  // A zero or non-finite step gives 0/0 quotients, a NaN tolerance passes nothing.
  AG_CHECK(std::isfinite(options.eps) && options.eps > 0 && std::isfinite(options.rtol) &&
               options.rtol >= 0 && std::isfinite(options.atol) && options.atol >= 0,
           "{}: invalid options eps {}, rtol {}, atol {}: need a finite eps > 0 and finite "
           "tolerances >= 0",
           function, options.eps, options.rtol, options.atol);
}

// Perturbing a tensor in place needs a leaf that backward() gives a .grad.
void check_in_place_tensors(const NamedTensorList& tensors) {
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, t] = tensors[i];
    AG_CHECK(t.defined(), "gradcheck_in_place: tensor {} ('{}') is an undefined tensor", i, name);
    AG_CHECK(t.requires_grad(),
             "gradcheck_in_place: {} {} does not require grad, so backward() gives it no "
             "gradient to compare; pass the tensors that require grad (a module's parameters do)",
             name, describe(t));
    AG_CHECK(t.is_leaf(),
             "gradcheck_in_place: {} {} is not a leaf (made by {}): backward() keeps no .grad for "
             "it and f would recompute it from the leaves; pass the leaves it is made from",
             name, describe(t), t.grad_fn()->name);
  }
}

// Keeps the tensors' .grad as the caller had it: cleared for the check's one
// backward(), put back when the check ends, also by an exception. All are saved
// before any is cleared, so a tensor named twice gets its own .grad back.
class SavedGrads {
 public:
  explicit SavedGrads(const NamedTensorList& tensors) : tensors_(tensors) {
    for (const auto& [name, t] : tensors_) grads_.push_back(t.grad());
    for (auto& [name, t] : tensors_) t.set_grad(Tensor());
  }
  ~SavedGrads() {
    for (size_t i = 0; i < tensors_.size(); ++i) tensors_[i].second.set_grad(grads_[i]);
  }
  SavedGrads(const SavedGrads&) = delete;
  SavedGrads& operator=(const SavedGrads&) = delete;

 private:
  NamedTensorList tensors_;  // handles: the same tensors as the caller's
  std::vector<Tensor> grads_;
};

// Puts a perturbed element back as it was, bit for bit, also when f throws.
struct RestoreElement {
  real& element;
  const real saved;
  ~RestoreElement() { element = saved; }
};

// The one finite-difference loop behind both entries: f reads the tensors
// where they are; each element is moved by +-eps in place and restored.
GradcheckResult compare_with_finite_differences(const Entry& entry,
                                                const std::function<Tensor()>& f,
                                                const NamedTensorList& tensors,
                                                const GradcheckOptions& options) {
  // Analytic: the gradient of L = sum(v * f()) from one backward().
  Tensor v;
  std::vector<Tensor> analytic;
  {
    const SavedGrads saved(tensors);
    Tensor out = f();
    AG_CHECK(out.defined() && out.requires_grad(),
             "{}: the function's output {} does not require grad; {}", entry.function,
             describe(out), entry.output_advice);
    Generator gen(options.seed);
    v = randn(out.shape(), gen);
    sum(mul(out, v)).backward();
    for (const auto& [name, t] : tensors)
      analytic.push_back(t.grad().defined() ? t.grad() : zeros_like(t));
  }

  // Numeric: L = sum(v * f()) in double, at x + eps e_j and x - eps e_j.
  NoGradGuard no_grad;  // perturbing in place is allowed, and nothing is recorded
  auto weighted_output = [&] {
    Tensor out = f();
    AG_CHECK(out.defined() && out.shape() == v.shape(),
             "{}: the function's output was {} at the first call and {} when an input was "
             "perturbed; {} needs f to give the same shape every time",
             entry.function, shape_str(v.shape()), describe(out), entry.function);
    double total = 0;
    for (int64_t i = 0; i < out.numel(); ++i) total += double(out.data()[i]) * double(v.data()[i]);
    return total;
  };
  GradcheckResult result;
  double worst_excess = -INFINITY;
  bool compared_any = false;
  for (size_t i = 0; i < tensors.size(); ++i) {
    Tensor x = tensors[i].second;  // a handle: the caller's data
    for (int64_t j = 0; j < x.numel(); ++j) {
      real& element = x.data()[j];
      const real saved = element;
      double plus = 0, minus = 0;
      {
        const RestoreElement restore{element, saved};
        element = static_cast<real>(saved + options.eps);
        plus = weighted_output();
        element = static_cast<real>(saved - options.eps);
        minus = weighted_output();
      }
      double numeric = (plus - minus) / (2 * options.eps);
      double a = analytic[i].data()[j];
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
  if (!compared_any) {  // every tensor checked is empty
    result.message =
        fmt::format("{} passed: the {} have no elements", entry.function, entry.tensors);
    return result;
  }
  const auto& [name, worst] = tensors[result.input];
  result.name = name;
  result.message = fmt::format(
      "{} {}: worst entry is {} {}, element {}: analytic {:.10g} vs numeric {:.10g} (difference "
      "{:.3g}, allowed {:.3g})",
      entry.function, result.ok ? "passed" : "FAILED", name, describe(worst),
      position_str(result.flat_index, worst.shape()), result.analytic, result.numeric,
      std::abs(result.analytic - result.numeric),
      options.atol + options.rtol * std::abs(result.numeric));
  return result;
}

}  // namespace

GradcheckResult gradcheck(const GradcheckFunction& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options) {
  check_options("gradcheck", options);
  // Work on copies so the caller's tensors and their .grad stay untouched; the
  // copies of the inputs that require grad are the ones checked.
  std::vector<Tensor> xs;
  NamedTensorList checked;
  std::vector<size_t> input_of_checked;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Tensor copy = inputs[i].detach();
    if (inputs[i].requires_grad()) {
      copy.requires_grad_(true);
      checked.push_back({"input " + std::to_string(i), copy});
      input_of_checked.push_back(i);
    }
    xs.push_back(copy);
  }
  const Entry entry{"gradcheck", "inputs that require grad",
                    "give at least one input requires_grad and make sure f uses it"};
  GradcheckResult result = compare_with_finite_differences(
      entry, [&] { return f(xs); }, checked, options);
  if (!checked.empty()) result.input = input_of_checked[result.input];
  return result;
}

GradcheckResult gradcheck_in_place(const std::function<Tensor()>& f, const NamedTensorList& tensors,
                                   const GradcheckOptions& options) {
  check_options("gradcheck_in_place", options);
  check_in_place_tensors(tensors);
  const Entry entry{"gradcheck_in_place", "tensors",
                    "make sure f reads the tensors it is checked on, with grad mode on (not "
                    "under NoGradGuard)"};
  return compare_with_finite_differences(entry, f, tensors, options);
}

}  // namespace ag
