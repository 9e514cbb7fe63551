// Elementwise ops. Binary ops broadcast (NumPy rules); their backward sums the
// gradient back to each input's shape with kernel::sum_to.
#include <cmath>

#include "autograd/node.hpp"
#include "autograd/ops.hpp"
#include "core/fast_math.hpp"
#include "core/kernels.hpp"
#include "core/mode.hpp"

namespace ag {

using kernel::sum_to;

// --- tensor (op) tensor ---------------------------------------------------------------

// The backward lambdas of add and sub capture a and b (already kept alive by
// the node) rather than copies of their shapes: a Shape copy is an allocation,
// and these ops run by the thousand in a training step.

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = kernel::zip(a, b, "add", [](real x, real y) { return x + y; });
  // d(a+b)/da = 1, d(a+b)/db = 1
  record("AddBackward", out, {a, b}, [a, b](const Tensor& g, const Tensor&) {
    return Grads{sum_to(g, a.shape()), sum_to(g, b.shape())};
  });
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = kernel::zip(a, b, "sub", [](real x, real y) { return x - y; });
  // d(a-b)/da = 1, d(a-b)/db = -1
  record("SubBackward", out, {a, b}, [a, b](const Tensor& g, const Tensor&) {
    return Grads{sum_to(g, a.shape()), b.requires_grad() ? sum_to(neg(g), b.shape()) : Tensor()};
  });
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = kernel::zip(a, b, "mul", [](real x, real y) { return x * y; });
  // d(a*b)/da = b, d(a*b)/db = a
  record("MulBackward", out, {a, b},
         [a, b, plain = reference_mode()](const Tensor& g, const Tensor&) {
           if (plain)
             return Grads{a.requires_grad() ? sum_to(g * b, a.shape()) : Tensor(),
                          b.requires_grad() ? sum_to(g * a, b.shape()) : Tensor()};
           // The same in one pass each: no g * b temporary (core/kernels_reduce.cpp).
           return Grads{a.requires_grad() ? kernel::mul_sum_to(g, b, a.shape()) : Tensor(),
                        b.requires_grad() ? kernel::mul_sum_to(g, a, b.shape()) : Tensor()};
         });
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = kernel::zip(a, b, "div", [](real x, real y) { return x / y; });
  // d(a/b)/da = 1/b, d(a/b)/db = -a/b^2 = -out/b
  record("DivBackward", out, {a, b}, [a, b](const Tensor& g, const Tensor& out) {
    return Grads{a.requires_grad() ? sum_to(g / b, a.shape()) : Tensor(),
                 b.requires_grad() ? sum_to(neg(g * out / b), b.shape()) : Tensor()};
  });
  return out;
}

Tensor neg(const Tensor& a) {
  check_defined(a, "neg");
  Tensor out = kernel::map(a, [](real x) { return -x; });
  // d(-a)/da = -1
  record("NegBackward", out, {a}, [](const Tensor& g, const Tensor&) { return Grads{neg(g)}; });
  return out;
}

// --- tensor (op) scalar: the scalar is a constant, so one gradient ------------------------

Tensor add(const Tensor& a, real b) {
  check_defined(a, "add");
  Tensor out = kernel::map(a, [b](real x) { return x + b; });
  // d(a+c)/da = 1
  record("AddBackward", out, {a}, [](const Tensor& g, const Tensor&) { return Grads{g}; });
  return out;
}

Tensor mul(const Tensor& a, real b) {
  check_defined(a, "mul");
  Tensor out = kernel::map(a, [b](real x) { return x * b; });
  // d(a*c)/da = c
  record("MulBackward", out, {a}, [b](const Tensor& g, const Tensor&) { return Grads{g * b}; });
  return out;
}

Tensor div(const Tensor& a, real b) {
  check_defined(a, "div");
  Tensor out = kernel::map(a, [b](real x) { return x / b; });
  // d(a/c)/da = 1/c
  record("DivBackward", out, {a}, [b](const Tensor& g, const Tensor&) { return Grads{g / b}; });
  return out;
}

Tensor rsub(const Tensor& a, real b) {
  check_defined(a, "rsub");
  Tensor out = kernel::map(a, [b](real x) { return b - x; });
  // d(c-a)/da = -1
  record("RsubBackward", out, {a}, [](const Tensor& g, const Tensor&) { return Grads{neg(g)}; });
  return out;
}

Tensor rdiv(const Tensor& a, real b) {
  check_defined(a, "rdiv");
  Tensor out = kernel::map(a, [b](real x) { return b / x; });
  // d(c/a)/da = -c/a^2 = -out/a
  record("RdivBackward", out, {a},
         [a](const Tensor& g, const Tensor& out) { return Grads{neg(g * out / a)}; });
  return out;
}

// --- functions of one tensor -----------------------------------------------------------

Tensor pow(const Tensor& a, real p) {
  check_defined(a, "pow");
  Tensor out = kernel::map(a, [p](real x) { return std::pow(x, p); });
  // d(a^p)/da = p a^(p-1)
  record("PowBackward", out, {a}, [a, p](const Tensor& g, const Tensor&) {
    // (p = 0: the derivative is 0 everywhere; p x^(p-1) would give 0 * inf at x = 0)
    return Grads{g * kernel::map(a, [p](real x) { return p == 0 ? 0 : p * std::pow(x, p - 1); })};
  });
  return out;
}

Tensor exp(const Tensor& a) {
  check_defined(a, "exp");
  // fast::exp: std::exp in the double flavor, a vectorizable float exp in the float one
  Tensor out = kernel::map(a, [](real x) { return fast::exp(x); });
  // d(e^a)/da = e^a = out
  record("ExpBackward", out, {a},
         [](const Tensor& g, const Tensor& out) { return Grads{g * out}; });
  return out;
}

Tensor log(const Tensor& a) {
  check_defined(a, "log");
  Tensor out = kernel::map(a, [](real x) { return std::log(x); });
  // d(ln a)/da = 1/a
  record("LogBackward", out, {a}, [a](const Tensor& g, const Tensor&) { return Grads{g / a}; });
  return out;
}

Tensor sqrt(const Tensor& a) {
  check_defined(a, "sqrt");
  Tensor out = kernel::map(a, [](real x) { return std::sqrt(x); });
  // d(sqrt a)/da = 1 / (2 sqrt a) = 0.5 / out
  record("SqrtBackward", out, {a}, [](const Tensor& g, const Tensor& out) {
    return Grads{kernel::zip(g, out, "sqrt", [](real gi, real y) { return gi * real(0.5) / y; })};
  });
  return out;
}

Tensor tanh(const Tensor& a) {
  check_defined(a, "tanh");
  // fast::tanh: std::tanh in the double flavor, a vectorizable float tanh in the float one
  Tensor out = kernel::map(a, [](real x) { return fast::tanh(x); });
  // d(tanh a)/da = 1 - tanh(a)^2 = 1 - out^2
  record("TanhBackward", out, {a}, [](const Tensor& g, const Tensor& out) {
    return Grads{kernel::zip(g, out, "tanh", [](real gi, real y) { return gi * (1 - y * y); })};
  });
  return out;
}

Tensor sigmoid(const Tensor& a) {
  check_defined(a, "sigmoid");
  // sigma(x) = 1 / (1 + e^-x); fast::sigmoid: that formula on std::exp in the double
  // flavor, on the vectorizable float exp in the float one
  Tensor out = kernel::map(a, [](real x) { return fast::sigmoid(x); });
  // d(sigma a)/da = sigma(a) (1 - sigma(a)) = out (1 - out)
  record("SigmoidBackward", out, {a}, [](const Tensor& g, const Tensor& out) {
    return Grads{kernel::zip(g, out, "sigmoid", [](real gi, real y) { return gi * y * (1 - y); })};
  });
  return out;
}

Tensor relu(const Tensor& a) {
  check_defined(a, "relu");
  // max(a, 0), written so that a NaN stays NaN (NaN <= 0 is false), as in PyTorch
  Tensor out = kernel::map(a, [](real x) { return x <= 0 ? real(0) : x; });
  // d(relu a)/da = 1 where a > 0, else 0 (0 at a = 0; a NaN passes g on, as PyTorch)
  record("ReluBackward", out, {a}, [](const Tensor& g, const Tensor& out) {
    return Grads{
        kernel::zip(g, out, "relu", [](real gi, real y) { return y <= 0 ? real(0) : gi; })};
  });
  return out;
}

}  // namespace ag
