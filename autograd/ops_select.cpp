// Masks: masked_fill and where. A mask is a tensor of 0s and 1s (nonzero =
// true) that broadcasts against the data, e.g. a causal mask (T,T) over
// attention scores (B,H,T,T).
#include <cmath>

#include "autograd/node.hpp"
#include "autograd/ops.hpp"
#include "core/kernels.hpp"

namespace ag {

namespace {

// The mask may broadcast to the data but must not enlarge it: the result has
// the data's shape, as in PyTorch.
void check_mask_fits(const Tensor& mask, const Shape& target, const char* op) {
  Shape joint = broadcast_shapes(mask.shape(), target, op);
  AG_CHECK(joint == target, "{}: mask of shape {} would enlarge the result beyond {}", op,
           shape_str(mask.shape()), shape_str(target));
}

// For an op whose differentiable inputs do not require grad: the output is
// a constant, but anomaly detection still looks at it (check_anomaly).
Tensor record_nothing(const Tensor& out, const char* name, std::initializer_list<Tensor> inputs) {
  check_anomaly(out, name, inputs.begin(), inputs.end());
  return out;
}

}  // namespace

Tensor masked_fill(const Tensor& a, const Tensor& mask, real value) {
  check_defined(a, "masked_fill");
  check_defined(mask, "masked_fill", "mask");
  check_mask_fits(mask, a.shape(), "masked_fill");
  Tensor out =
      kernel::zip(a, mask, "masked_fill", [value](real x, real m) { return m != 0 ? value : x; });
  // An infinite fill value (-inf before a softmax) is written on purpose: not
  // an anomaly; a NaN is.
  check_anomaly(out, "MaskedFillBackward", &a, &a + 1, /*infinity_given=*/std::isinf(value));
  // d(out)/da = 1 where the mask is false, 0 where it put the constant.
  // The mask is recorded as an input (it gets no gradient) so that backward
  // notices if it is changed in place afterwards; only a decides whether
  // anything is recorded.
  if (!a.requires_grad()) return out;
  const Tensor inputs[] = {a, mask};
  record_unchecked(
      "MaskedFillBackward", out, inputs, inputs + 2, [mask](const Tensor& g, const Tensor&) {
        return Grads{kernel::zip(g, mask, "masked_fill",
                                 [](real gi, real m) { return m != 0 ? real(0) : gi; }),
                     Tensor()};
      });
  return out;
}

Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b) {
  check_defined(condition, "where", "condition");
  check_defined(a, "where", "first operand");
  check_defined(b, "where", "second operand");
  Shape shape =
      broadcast_shapes(broadcast_shapes(condition.shape(), a.shape(), "where"), b.shape(), "where");
  check_sizes(shape, "where");
  Tensor c = kernel::broadcast_to(condition, shape, "where");
  Tensor x = kernel::broadcast_to(a, shape, "where"), y = kernel::broadcast_to(b, shape, "where");
  Tensor out = Tensor::empty(shape, "where");
  for (int64_t i = 0; i < out.numel(); ++i)
    out.data()[i] = c.data()[i] != 0 ? x.data()[i] : y.data()[i];
  // d(out)/da = condition, d(out)/db = 1 - condition (then undo broadcasting).
  // The condition is recorded as an input (no gradient), as masked_fill's mask.
  if (!a.requires_grad() && !b.requires_grad()) return record_nothing(out, "WhereBackward", {a, b});
  record("WhereBackward", out, {a, b, condition},
         [condition, sa = a.shape(), sb = b.shape()](const Tensor& g, const Tensor&) {
           Tensor c = kernel::broadcast_to(condition, g.shape());
           Tensor ga = kernel::zip(g, c, "where", [](real gi, real m) { return m != 0 ? gi : 0; });
           Tensor gb = kernel::zip(g, c, "where", [](real gi, real m) { return m != 0 ? 0 : gi; });
           return Grads{kernel::sum_to(ga, sa), kernel::sum_to(gb, sb), Tensor()};
         });
  return out;
}

}  // namespace ag
