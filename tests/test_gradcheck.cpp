// Gradient checks: every differentiable op of autograd/ops.hpp, its backward
// compared with central finite differences (ag::gradcheck), plus compositions,
// a check that gradcheck itself catches a wrong backward, and the same for
// ag::gradcheck_in_place, which perturbs a module's parameters where they are.
//
// Only in the double flavor: in float, the rounding error of the finite
// differences swamps any tolerance worth having. (The argument checks, last,
// run in both.)
//
// Default tolerance everywhere (rtol 1e-6, atol 1e-8, eps 1e-6); each test
// seeds its own generator so a failure reproduces on its own.
#include <doctest/doctest.h>

#include <cstring>
#include <limits>

#include "layers/basic/linear.hpp"
#include "tests/helpers.hpp"

namespace {

// Bit-for-bit equality of a tensor's values with a copy taken before.
bool same_bits(const ag::Tensor& t, const ag::Tensor& before) {
  return t.shape() == before.shape() &&
         std::memcmp(t.data(), before.data(), sizeof(ag::real) * size_t(t.numel())) == 0;
}

}  // namespace

#ifdef AG_USE_DOUBLE

#include <algorithm>
#include <numeric>

namespace {

using namespace ag;
using ag::testing::check_error;
using ag::testing::check_gradients;
using ag::testing::check_values;
using ag::testing::leaf;
using Inputs = std::vector<Tensor>;

// Values in [0.5, 2): for log, sqrt, fractional pow and divisors.
Tensor positive(const Shape& shape, Generator& gen, bool grad = true) {
  Tensor t = uniform(shape, real(0.5), real(2), gen);
  if (grad) t.requires_grad_(true);
  return t;
}

// Values with |x| in [0.5, 2) and random signs: kept away from 0, for divisors
// and for relu (whose kink at 0 finite differences cannot see through).
Tensor away_from_zero(const Shape& shape, Generator& gen, bool grad = true) {
  Tensor t = uniform(shape, real(0.5), real(2), gen);
  for (int64_t i = 0; i < t.numel(); ++i)
    if (gen.bernoulli(0.5)) t.data()[i] = -t.data()[i];
  if (grad) t.requires_grad_(true);
  return t;
}

// Distinct values at least 0.2 apart, in random order: no ties (nor near ties
// that a +-eps perturbation could flip) for max.
Tensor distinct(const Shape& shape, Generator& gen) {
  const int64_t n = shape_numel(shape);
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[gen.randint(0, i + 1)]);
  std::vector<real> values(n);
  for (int64_t i = 0; i < n; ++i)
    values[i] = real(0.3) * real(order[i] - n / 2) + real(0.1) * real(gen.uniform());
  Tensor t = from_vector(values, shape);
  t.requires_grad_(true);
  return t;
}

// A 0/1 mask tensor (no gradient), with both values present when large enough.
Tensor random_mask(const Shape& shape, Generator& gen) {
  Tensor m = zeros(shape);
  for (int64_t i = 0; i < m.numel(); ++i) m.data()[i] = gen.bernoulli(0.5) ? 1 : 0;
  if (m.numel() >= 2) {
    m.data()[0] = 1;
    m.data()[1] = 0;
  }
  return m;
}

}  // namespace

// ===================================================================================
// Elementwise binary ops, with broadcasting
// ===================================================================================

TEST_CASE("grad/add: same shape and broadcasting") {
  Generator gen(101);
  auto f = [](const Inputs& x) { return add(x[0], x[1]); };
  SUBCASE("same shape (2,3)") { check_gradients(f, {leaf({2, 3}, gen), leaf({2, 3}, gen)}); }
  SUBCASE("(3,1) + (1,4)") { check_gradients(f, {leaf({3, 1}, gen), leaf({1, 4}, gen)}); }
  SUBCASE("(4,) + (2,3,4)") { check_gradients(f, {leaf({4}, gen), leaf({2, 3, 4}, gen)}); }
  SUBCASE("(2,1,3) + (5,1)") { check_gradients(f, {leaf({2, 1, 3}, gen), leaf({5, 1}, gen)}); }
  SUBCASE("() + (2,3)") { check_gradients(f, {leaf({}, gen), leaf({2, 3}, gen)}); }
  SUBCASE("(2,3) + ()") { check_gradients(f, {leaf({2, 3}, gen), leaf({}, gen)}); }
  SUBCASE("only one side requires grad") {
    check_gradients(f, {leaf({3, 1}, gen), randn({1, 4}, gen)});
    check_gradients(f, {randn({3, 1}, gen), leaf({1, 4}, gen)});
  }
}

TEST_CASE("grad/sub: same shape and broadcasting") {
  Generator gen(102);
  auto f = [](const Inputs& x) { return sub(x[0], x[1]); };
  SUBCASE("same shape (2,3)") { check_gradients(f, {leaf({2, 3}, gen), leaf({2, 3}, gen)}); }
  SUBCASE("(3,1) - (1,4)") { check_gradients(f, {leaf({3, 1}, gen), leaf({1, 4}, gen)}); }
  SUBCASE("(4,) - (2,3,4)") { check_gradients(f, {leaf({4}, gen), leaf({2, 3, 4}, gen)}); }
  SUBCASE("(2,1,3) - (5,1)") { check_gradients(f, {leaf({2, 1, 3}, gen), leaf({5, 1}, gen)}); }
  SUBCASE("() - (2,3)") { check_gradients(f, {leaf({}, gen), leaf({2, 3}, gen)}); }
  SUBCASE("(2,3) - ()") { check_gradients(f, {leaf({2, 3}, gen), leaf({}, gen)}); }
}

TEST_CASE("grad/mul: same shape and broadcasting") {
  Generator gen(103);
  auto f = [](const Inputs& x) { return mul(x[0], x[1]); };
  SUBCASE("same shape (2,3)") { check_gradients(f, {leaf({2, 3}, gen), leaf({2, 3}, gen)}); }
  SUBCASE("(3,1) * (1,4)") { check_gradients(f, {leaf({3, 1}, gen), leaf({1, 4}, gen)}); }
  SUBCASE("(4,) * (2,3,4)") { check_gradients(f, {leaf({4}, gen), leaf({2, 3, 4}, gen)}); }
  SUBCASE("(2,1,3) * (5,1)") { check_gradients(f, {leaf({2, 1, 3}, gen), leaf({5, 1}, gen)}); }
  SUBCASE("() * (2,3)") { check_gradients(f, {leaf({}, gen), leaf({2, 3}, gen)}); }
  SUBCASE("(2,3) * ()") { check_gradients(f, {leaf({2, 3}, gen), leaf({}, gen)}); }
  SUBCASE("only one side requires grad") {
    check_gradients(f, {leaf({2, 1, 3}, gen), randn({5, 1}, gen)});
    check_gradients(f, {randn({2, 1, 3}, gen), leaf({5, 1}, gen)});
  }
}

TEST_CASE("grad/div: same shape and broadcasting, divisor away from 0") {
  Generator gen(104);
  auto f = [](const Inputs& x) { return div(x[0], x[1]); };
  SUBCASE("same shape (2,3)") {
    check_gradients(f, {leaf({2, 3}, gen), away_from_zero({2, 3}, gen)});
  }
  SUBCASE("(3,1) / (1,4)") { check_gradients(f, {leaf({3, 1}, gen), away_from_zero({1, 4}, gen)}); }
  SUBCASE("(4,) / (2,3,4)") {
    check_gradients(f, {leaf({4}, gen), away_from_zero({2, 3, 4}, gen)});
  }
  SUBCASE("(2,1,3) / (5,1)") {
    check_gradients(f, {leaf({2, 1, 3}, gen), away_from_zero({5, 1}, gen)});
  }
  SUBCASE("() / (2,3)") { check_gradients(f, {leaf({}, gen), away_from_zero({2, 3}, gen)}); }
  SUBCASE("(2,3) / ()") { check_gradients(f, {leaf({2, 3}, gen), away_from_zero({}, gen)}); }
  SUBCASE("only one side requires grad") {
    check_gradients(f, {leaf({3, 1}, gen), away_from_zero({1, 4}, gen, false)});
    check_gradients(f, {randn({3, 1}, gen), away_from_zero({1, 4}, gen)});
  }
}

// ===================================================================================
// Tensor (op) scalar, and neg
// ===================================================================================

TEST_CASE("grad/scalar ops: a+2, 2+a, a-2, 2-a, a*3, 3*a, a/3, 2/a") {
  Generator gen(105);
  Tensor a = leaf({2, 3}, gen);
  Tensor nz = away_from_zero({2, 3}, gen);
  SUBCASE("a + 2") {
    check_gradients([](const Inputs& x) { return x[0] + real(2); }, {a});
  }
  SUBCASE("2 + a") {
    check_gradients([](const Inputs& x) { return real(2) + x[0]; }, {a});
  }
  SUBCASE("a - 2") {
    check_gradients([](const Inputs& x) { return x[0] - real(2); }, {a});
  }
  SUBCASE("2 - a (rsub)") {
    check_gradients([](const Inputs& x) { return real(2) - x[0]; }, {a});
  }
  SUBCASE("a * 3") {
    check_gradients([](const Inputs& x) { return x[0] * real(3); }, {a});
  }
  SUBCASE("3 * a") {
    check_gradients([](const Inputs& x) { return real(3) * x[0]; }, {a});
  }
  SUBCASE("a / 3") {
    check_gradients([](const Inputs& x) { return x[0] / real(3); }, {a});
  }
  SUBCASE("2 / a (rdiv), a away from 0") {
    check_gradients([](const Inputs& x) { return real(2) / x[0]; }, {nz});
  }
  SUBCASE("on a 0-dim tensor") {
    check_gradients([](const Inputs& x) { return real(2) / (x[0] * real(3) - real(7)); },
                    {leaf({}, gen)});
  }
}

TEST_CASE("grad/neg") {
  Generator gen(106);
  check_gradients([](const Inputs& x) { return -x[0]; }, {leaf({3, 2}, gen)});
  check_gradients([](const Inputs& x) { return neg(x[0]); }, {leaf({}, gen)});
}

// ===================================================================================
// Functions of one tensor
// ===================================================================================

TEST_CASE("grad/pow: exponents 2, 3, 0.5, -1") {
  Generator gen(107);
  SUBCASE("x^2") {
    check_gradients([](const Inputs& x) { return pow(x[0], 2); }, {leaf({2, 3}, gen)});
  }
  SUBCASE("x^3") {
    check_gradients([](const Inputs& x) { return pow(x[0], 3); }, {leaf({2, 3}, gen)});
  }
  SUBCASE("x^0.5 on positive inputs") {
    check_gradients([](const Inputs& x) { return pow(x[0], real(0.5)); }, {positive({2, 3}, gen)});
  }
  SUBCASE("x^-1, inputs away from 0") {
    check_gradients([](const Inputs& x) { return pow(x[0], -1); }, {away_from_zero({2, 3}, gen)});
  }
}

TEST_CASE("grad/exp") {
  Generator gen(108);
  check_gradients([](const Inputs& x) { return exp(x[0]); }, {leaf({2, 3}, gen)});
}

TEST_CASE("grad/log: positive inputs") {
  Generator gen(109);
  check_gradients([](const Inputs& x) { return log(x[0]); }, {positive({2, 3}, gen)});
}

TEST_CASE("grad/sqrt: positive inputs") {
  Generator gen(110);
  check_gradients([](const Inputs& x) { return sqrt(x[0]); }, {positive({2, 3}, gen)});
}

TEST_CASE("grad/tanh") {
  Generator gen(111);
  check_gradients([](const Inputs& x) { return tanh(x[0]); }, {leaf({3, 4}, gen)});
}

TEST_CASE("grad/sigmoid: including large |x| (both branches of the stable formula)") {
  Generator gen(112);
  Tensor a = leaf({3, 4}, gen);
  check_gradients([](const Inputs& x) { return sigmoid(x[0]); }, {a});
  Tensor wide = from_vector({-8, -3, -0.5, 0.5, 3, 8}, {2, 3});
  wide.requires_grad_(true);
  check_gradients([](const Inputs& x) { return sigmoid(x[0]); }, {wide});
}

TEST_CASE("grad/relu: inputs away from the kink") {
  Generator gen(113);
  check_gradients([](const Inputs& x) { return relu(x[0]); }, {away_from_zero({3, 4}, gen)});
}

// ===================================================================================
// Reductions
// ===================================================================================

TEST_CASE("grad/sum: all, and along each dim with keepdim both ways") {
  Generator gen(114);
  Tensor a = leaf({2, 3, 4}, gen);
  check_gradients([](const Inputs& x) { return sum(x[0]); }, {a});
  check_gradients([](const Inputs& x) { return sum(x[0]); }, {leaf({}, gen)});
  for (int64_t dim : {0, 1, 2, -1})
    for (bool keepdim : {false, true}) {
      CAPTURE(dim);
      CAPTURE(keepdim);
      check_gradients([=](const Inputs& x) { return sum(x[0], dim, keepdim); }, {a});
    }
}

TEST_CASE("grad/mean: all, and along each dim with keepdim both ways") {
  Generator gen(115);
  Tensor a = leaf({2, 3, 4}, gen);
  check_gradients([](const Inputs& x) { return mean(x[0]); }, {a});
  for (int64_t dim : {0, 1, 2, -1})
    for (bool keepdim : {false, true}) {
      CAPTURE(dim);
      CAPTURE(keepdim);
      check_gradients([=](const Inputs& x) { return mean(x[0], dim, keepdim); }, {a});
    }
}

TEST_CASE("grad/max: all, and along each dim with keepdim both ways (no ties)") {
  Generator gen(116);
  Tensor a = distinct({2, 3, 4}, gen);
  check_gradients([](const Inputs& x) { return max(x[0]); }, {a});
  for (int64_t dim : {0, 1, 2, -1})
    for (bool keepdim : {false, true}) {
      CAPTURE(dim);
      CAPTURE(keepdim);
      check_gradients([=](const Inputs& x) { return max(x[0], dim, keepdim); }, {a});
    }
}

// ===================================================================================
// Shapes and selection
// ===================================================================================

TEST_CASE("grad/reshape") {
  Generator gen(117);
  Tensor a = leaf({2, 3, 4}, gen);
  check_gradients([](const Inputs& x) { return reshape(x[0], {6, 4}); }, {a});
  check_gradients([](const Inputs& x) { return reshape(x[0], {4, -1}); }, {a});
  check_gradients([](const Inputs& x) { return reshape(x[0], {24}); }, {a});
  check_gradients([](const Inputs& x) { return reshape(x[0], {}); }, {leaf({1, 1}, gen)});
}

TEST_CASE("grad/transpose") {
  Generator gen(118);
  check_gradients([](const Inputs& x) { return transpose(x[0], 0, 1); }, {leaf({3, 4}, gen)});
  Tensor a = leaf({2, 3, 4}, gen);
  check_gradients([](const Inputs& x) { return transpose(x[0], 0, 2); }, {a});
  check_gradients([](const Inputs& x) { return transpose(x[0], -1, -2); }, {a});
}

TEST_CASE("grad/permute: 3-D") {
  Generator gen(119);
  Tensor a = leaf({2, 3, 4}, gen);
  // Every non-identity permutation of 3 dims: the cyclic ones catch a backward
  // that applies the permutation instead of its inverse.
  for (std::vector<int64_t> dims :
       std::vector<std::vector<int64_t>>{{0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}}) {
    CAPTURE(dims[0]);
    CAPTURE(dims[1]);
    CAPTURE(dims[2]);
    check_gradients([=](const Inputs& x) { return permute(x[0], dims); }, {a});
  }
}

TEST_CASE("grad/unsqueeze") {
  Generator gen(120);
  Tensor a = leaf({2, 3}, gen);
  for (int64_t dim : {0, 1, 2, -1}) {
    CAPTURE(dim);
    check_gradients([=](const Inputs& x) { return unsqueeze(x[0], dim); }, {a});
  }
}

TEST_CASE("grad/squeeze") {
  Generator gen(121);
  Tensor a = leaf({2, 1, 3, 1}, gen);
  check_gradients([](const Inputs& x) { return squeeze(x[0], 1); }, {a});
  check_gradients([](const Inputs& x) { return squeeze(x[0], -1); }, {a});
  check_gradients([](const Inputs& x) { return squeeze(x[0]); }, {a});
}

TEST_CASE("grad/cat: 3 parts along dims 0 and 1, only some require grad") {
  Generator gen(122);
  SUBCASE("dim 0") {
    Tensor a = leaf({2, 3}, gen), b = randn({1, 3}, gen), c = leaf({3, 3}, gen);
    check_gradients([](const Inputs& x) { return cat({x[0], x[1], x[2]}, 0); }, {a, b, c});
  }
  SUBCASE("dim 1") {
    Tensor a = randn({2, 2}, gen), b = leaf({2, 1}, gen), c = leaf({2, 3}, gen);
    check_gradients([](const Inputs& x) { return cat({x[0], x[1], x[2]}, 1); }, {a, b, c});
  }
  SUBCASE("dim -1 of 3-D, middle part only") {
    Tensor a = randn({2, 2, 1}, gen), b = leaf({2, 2, 3}, gen), c = randn({2, 2, 2}, gen);
    check_gradients([](const Inputs& x) { return cat({x[0], x[1], x[2]}, -1); }, {a, b, c});
  }
}

TEST_CASE("grad/stack") {
  Generator gen(123);
  Tensor a = leaf({2, 3}, gen), b = randn({2, 3}, gen), c = leaf({2, 3}, gen);
  for (int64_t dim : {0, 1, 2}) {
    CAPTURE(dim);
    check_gradients([=](const Inputs& x) { return stack({x[0], x[1], x[2]}, dim); }, {a, b, c});
  }
}

TEST_CASE("grad/narrow") {
  Generator gen(124);
  Tensor a = leaf({3, 5, 2}, gen);
  check_gradients([](const Inputs& x) { return narrow(x[0], 0, 1, 2); }, {a});
  check_gradients([](const Inputs& x) { return narrow(x[0], 1, 2, 3); }, {a});
  check_gradients([](const Inputs& x) { return narrow(x[0], -1, 1, 1); }, {a});
}

TEST_CASE("grad/slice") {
  Generator gen(125);
  Tensor a = leaf({4, 5}, gen);
  check_gradients([](const Inputs& x) { return slice(x[0], 0, 1, 3); }, {a});
  check_gradients([](const Inputs& x) { return slice(x[0], 1, -3, -1); }, {a});
  check_gradients([](const Inputs& x) { return slice(x[0], 1, 2, 100); }, {a});
}

TEST_CASE("grad/index_select: repeated indices accumulate") {
  Generator gen(126);
  Tensor a = leaf({4, 3}, gen);
  check_gradients([](const Inputs& x) { return index_select(x[0], 0, {2, 0, 2, 2, 3}); }, {a});
  check_gradients([](const Inputs& x) { return index_select(x[0], 1, {1, 1, 0}); }, {a});
  Tensor ids = from_vector({3, 3, 1});
  check_gradients([ids](const Inputs& x) { return index_select(x[0], 0, ids); }, {a});
  Tensor b = leaf({2, 3, 4}, gen);
  check_gradients([](const Inputs& x) { return index_select(x[0], 1, {0, 2, 0}); }, {b});
  check_gradients([](const Inputs& x) { return index_select(x[0], -1, {3, 3, 3, 3, 1}); }, {b});
}

// ===================================================================================
// Masks
// ===================================================================================

TEST_CASE("grad/masked_fill: broadcast mask") {
  Generator gen(127);
  Tensor a = leaf({2, 3, 4}, gen);
  Tensor mask = random_mask({3, 1}, gen);
  check_gradients([mask](const Inputs& x) { return masked_fill(x[0], mask, real(-7)); }, {a});
  Tensor causal = from_vector({0, 1, 1, 0, 0, 1, 0, 0, 0}, {3, 3});
  Tensor scores = leaf({2, 3, 3}, gen);
  // A moderate fill value: with -1e9 the output's size would make L = sum(v * out)
  // round off by ~1e-7 absolute, i.e. ~0.05 after dividing by 2 eps.
  check_gradients([causal](const Inputs& x) { return masked_fill(x[0], causal, real(-3)); },
                  {scores});
}

TEST_CASE("grad/where: broadcasting of condition, a and b") {
  Generator gen(128);
  Tensor cond = random_mask({2, 1, 4}, gen);
  SUBCASE("a (3,1), b (4)") {
    check_gradients([cond](const Inputs& x) { return where(cond, x[0], x[1]); },
                    {leaf({3, 1}, gen), leaf({4}, gen)});
  }
  SUBCASE("a (2,3,4), b () ") {
    check_gradients([cond](const Inputs& x) { return where(cond, x[0], x[1]); },
                    {leaf({2, 3, 4}, gen), leaf({}, gen)});
  }
  SUBCASE("only b requires grad") {
    check_gradients([cond](const Inputs& x) { return where(cond, x[0], x[1]); },
                    {randn({3, 1}, gen), leaf({1, 3, 1}, gen)});
  }
}

// ===================================================================================
// softmax, log_softmax
// ===================================================================================

TEST_CASE("grad/softmax: dims 0, 1, -1 of a 3-D tensor") {
  Generator gen(129);
  Tensor a = leaf({2, 3, 4}, gen);
  for (int64_t dim : {0, 1, -1}) {
    CAPTURE(dim);
    check_gradients([=](const Inputs& x) { return softmax(x[0], dim); }, {a});
  }
}

TEST_CASE("grad/log_softmax: dims 0, 1, -1 of a 3-D tensor") {
  Generator gen(130);
  Tensor a = leaf({2, 3, 4}, gen);
  for (int64_t dim : {0, 1, -1}) {
    CAPTURE(dim);
    check_gradients([=](const Inputs& x) { return log_softmax(x[0], dim); }, {a});
  }
}

TEST_CASE("grad/softmax: after a -inf causal mask, including a fully masked row") {
  Generator gen(136);
  // Row 0 of each (4,4) block is fully masked (softmax gives zeros there), rows
  // 1 and 2 partly, row 3 not at all. Masked positions get no gradient.
  Tensor mask = from_vector({1, 1, 1, 1,  //
                             0, 1, 1, 1,  //
                             0, 0, 1, 1,  //
                             0, 0, 0, 0},
                            {4, 4});
  Tensor scores = leaf({2, 4, 4}, gen);
  const real inf = std::numeric_limits<real>::infinity();
  check_gradients(
      [mask, inf](const Inputs& x) { return softmax(masked_fill(x[0], mask, -inf), -1); },
      {scores});
}

// ===================================================================================
// matmul
// ===================================================================================

TEST_CASE("grad/matmul: every operand layout") {
  Generator gen(131);
  auto f = [](const Inputs& x) { return matmul(x[0], x[1]); };
  SUBCASE("1-D x 1-D (dot)") { check_gradients(f, {leaf({4}, gen), leaf({4}, gen)}); }
  SUBCASE("2-D x 1-D") { check_gradients(f, {leaf({3, 4}, gen), leaf({4}, gen)}); }
  SUBCASE("1-D x 2-D") { check_gradients(f, {leaf({4}, gen), leaf({4, 5}, gen)}); }
  SUBCASE("2-D x 2-D") { check_gradients(f, {leaf({3, 4}, gen), leaf({4, 5}, gen)}); }
  SUBCASE("(2,3,4) x (4,5): weight shared by the batch (folded GEMM backward)") {
    check_gradients(f, {leaf({2, 3, 4}, gen), leaf({4, 5}, gen)});
  }
  SUBCASE("(2,3,4) x (4,5) with only the weight requiring grad") {
    check_gradients(f, {randn({2, 3, 4}, gen), leaf({4, 5}, gen)});
  }
  SUBCASE("(2,3,4) x (2,4,5)") { check_gradients(f, {leaf({2, 3, 4}, gen), leaf({2, 4, 5}, gen)}); }
  SUBCASE("broadcast batch (2,1,3,4) x (3,4,2)") {
    check_gradients(f, {leaf({2, 1, 3, 4}, gen), leaf({3, 4, 2}, gen)});
  }
  SUBCASE("(3,4) x (2,4,5)") { check_gradients(f, {leaf({3, 4}, gen), leaf({2, 4, 5}, gen)}); }
  SUBCASE("(2,3,4) x 1-D") { check_gradients(f, {leaf({2, 3, 4}, gen), leaf({4}, gen)}); }
  SUBCASE("1-D x (2,4,5)") { check_gradients(f, {leaf({4}, gen), leaf({2, 4, 5}, gen)}); }
  SUBCASE("(5,1,2,4) x (4,3): two batch dims folded") {
    check_gradients(f, {leaf({5, 1, 2, 4}, gen), leaf({4, 3}, gen)});
  }
  SUBCASE("both operands broadcast: (3,1,2,4) x (1,2,4,3)") {
    check_gradients(f, {leaf({3, 1, 2, 4}, gen), leaf({1, 2, 4, 3}, gen)});
  }
  SUBCASE("(2,4) x (3,1,4,3)") { check_gradients(f, {leaf({2, 4}, gen), leaf({3, 1, 4, 3}, gen)}); }
  SUBCASE("the same tensor on both sides: x x and x^T x") {
    check_gradients([](const Inputs& x) { return matmul(x[0], x[0]); }, {leaf({2, 3, 3}, gen)});
    check_gradients([](const Inputs& x) { return matmul(transpose(x[0], 0, 1), x[0]); },
                    {leaf({3, 2}, gen)});
  }
}

// ===================================================================================
// Compositions
// ===================================================================================

TEST_CASE("grad/composition: 2-layer MLP with softmax, log and mean") {
  Generator gen(132);
  // loss = -mean(log(softmax(tanh(x W1 + b1) W2 + b2, dim=1)))
  auto mlp = [](const Inputs& p) {
    const Tensor &x = p[0], &w1 = p[1], &b1 = p[2], &w2 = p[3], &b2 = p[4];
    Tensor hidden = tanh(matmul(x, w1) + b1);
    Tensor logits = matmul(hidden, w2) + b2;
    return -mean(log(softmax(logits, 1)));
  };
  Tensor x = randn({4, 3}, gen);
  Tensor w1 = leaf({3, 5}, gen), b1 = leaf({5}, gen);
  Tensor w2 = leaf({5, 2}, gen), b2 = leaf({2}, gen);
  check_gradients(mlp, {x, w1, b1, w2, b2});
  SUBCASE("and with respect to the input too") {
    x.requires_grad_(true);
    check_gradients(mlp, {x, w1, b1, w2, b2});
  }
}

TEST_CASE("grad/composition: x used twice (x*x + x)") {
  Generator gen(133);
  check_gradients([](const Inputs& x) { return x[0] * x[0] + x[0]; }, {leaf({2, 3}, gen)});
  // b = a + a; c = b + b: gradients summed at each fan-out
  check_gradients(
      [](const Inputs& x) {
        Tensor b = x[0] + x[0];
        return (b + b) * x[0];
      },
      {leaf({3}, gen)});
}

TEST_CASE("grad/composition: diamond graph") {
  Generator gen(134);
  //        a
  //      /   \            (the two branches meet again in d, and b also
  //  b=exp(a) c=tanh(a)    reaches the output a second way through sum)
  //      \   /
  //    d = b * c + sum(b, 1, keepdim)
  check_gradients(
      [](const Inputs& x) {
        Tensor b = exp(x[0]);
        Tensor c = tanh(x[0] * x[1]);
        return b * c + sum(b, 1, true);
      },
      {leaf({3, 4}, gen), leaf({4}, gen)});
}

// ===================================================================================
// gradcheck itself must catch a wrong backward
// ===================================================================================

namespace {

// y = x, with a backward that multiplies the gradient of exactly one element
// (flat index `wrong`) by `factor`: wrong unless factor is 1. Built with
// ag::record as the ops are, so it goes through the engine like any real op.
Tensor identity_with_bug(const Tensor& x, int64_t wrong, real factor = 2) {
  Tensor out = x.detach();
  record("BuggyIdentityBackward", out, {x}, [wrong, factor](const Tensor& g, const Tensor&) {
    Tensor grad = g.clone();
    grad.data()[wrong] *= factor;
    return Grads{grad};
  });
  return out;
}

// y = x with a backward that returns 2g everywhere.
Tensor identity_doubled(const Tensor& x) {
  Tensor out = x.detach();
  record("DoubledIdentityBackward", out, {x},
         [](const Tensor& g, const Tensor&) { return Grads{g * real(2)}; });
  return out;
}

}  // namespace

TEST_CASE("grad/gradcheck: fails on a deliberately wrong gradient and names the entry") {
  Generator gen(135);
  Tensor a = leaf({2, 3}, gen).set_name("a");
  Tensor w = leaf({2, 3}, gen).set_name("w");

  SUBCASE("a backward returning 2g for y = x") {
    GradcheckResult r = gradcheck([](const Inputs& x) { return identity_doubled(x[0]); }, {w});
    INFO(r.message);
    CHECK_FALSE(r.ok);
    CHECK_FALSE(static_cast<bool>(r));
    CHECK(r.input == 0);
    // analytic is twice the numeric gradient
    CHECK(std::abs(r.analytic - 2 * r.numeric) <= 1e-6 * std::abs(r.numeric));
    CHECK(r.message.find("FAILED") != std::string::npos);
    CHECK(r.message.find("'w'") != std::string::npos);
  }

  SUBCASE("one wrong element, behind a correct input: input and element are named") {
    // f(a, w) = a * buggy(w): input 0 is right, input 1 is wrong at [1,2] only.
    GradcheckResult r = gradcheck(
        [](const Inputs& x) { return x[0] * identity_with_bug(x[1], /*wrong=*/5); }, {a, w});
    INFO(r.message);
    CHECK_FALSE(r.ok);
    CHECK(r.input == 1);
    CHECK(r.flat_index == 5);
    CHECK(r.message.find("FAILED") != std::string::npos);
    CHECK(r.message.find("input 1") != std::string::npos);
    CHECK(r.message.find("'w' (2,3)") != std::string::npos);
    CHECK(r.message.find("[1,2]") != std::string::npos);
    CHECK(r.name == "input 1");
  }

  SUBCASE("the same function with a correct backward passes (control)") {
    GradcheckResult r = gradcheck(
        [](const Inputs& x) { return x[0] * identity_with_bug(x[1], 5, /*factor=*/1); }, {a, w});
    INFO(r.message);
    CHECK(r.ok);
    CHECK(r.message.find("passed") != std::string::npos);
  }

  SUBCASE("gradcheck leaves the caller's inputs and grads alone") {
    std::vector<real> before = w.to_vector();
    GradcheckResult r = gradcheck([](const Inputs& x) { return identity_doubled(x[0]); }, {w});
    CHECK_FALSE(r.ok);
    CHECK(w.to_vector() == before);
    CHECK_FALSE(w.grad().defined());
  }
}

TEST_CASE("grad/pow: exponent 0 has gradient 0, also at x = 0") {
  Tensor x = ag::tensor({0, 2}).requires_grad_();
  ag::sum(ag::pow(x, 0)).backward();
  check_values(x.grad(), {0, 0});
}

TEST_CASE("grad/gradcheck: inputs without elements pass and say so") {
  Tensor x = ag::zeros({0, 3}).requires_grad_();
  GradcheckResult r = gradcheck([](const Inputs& in) { return ag::mul(in[0], real(2)); }, {x});
  CHECK(r.ok);
  CHECK(r.message.find("no elements") != std::string::npos);
}

TEST_CASE("grad/gradcheck: a function that ignores an input it is passed is caught") {
  Generator gen(21);
  Tensor a = ag::randn({2, 3}, gen).requires_grad_();
  Tensor w = ag::randn({2, 3}, gen).requires_grad_();
  // Reads the captured w, not its perturbed copy in[1]: gradcheck compares
  // a zero gradient with a zero difference quotient for w and passes.
  auto captured = [&](const Inputs& in) { return ag::mul(in[0], w); };
  CHECK(gradcheck(captured, {a, w}).ok);
  const std::string unread = ag::testing::unread_inputs(captured, {a, w});
  CHECK(unread.find("does not read input 1 ") != std::string::npos);
  CHECK(unread.find("input 0") == std::string::npos);
  // Reading every input passes, also through softmax, which ignores a constant shift.
  CHECK(ag::testing::unread_inputs([](const Inputs& in) { return ag::mul(in[0], in[1]); }, {a, w})
            .empty());
  CHECK(ag::testing::unread_inputs([](const Inputs& in) { return ag::softmax(in[0], 1); }, {a})
            .empty());
  // An input that does not require grad is not asked to matter.
  Tensor constant = ag::randn({2, 3}, gen);
  CHECK(ag::testing::unread_inputs([](const Inputs& in) { return ag::mul(in[0], real(2)); },
                                   {a, constant})
            .empty());
}

// ===================================================================================
// gradcheck_in_place: the tensors f reads where they are (a module's parameters)
// ===================================================================================

TEST_CASE("grad/gradcheck_in_place: a Linear passes, its values and .grad left as they were") {
  Generator gen(137);
  nn::Linear fc(3, 2);
  const Tensor x = randn({4, 3}, gen);
  // weight carries a gradient from an earlier backward, bias none: both stay so.
  fc.weight.set_grad(full({2, 3}, real(0.25)));
  const Tensor weight_grad = fc.weight.grad();
  const Tensor weight_before = fc.weight.detach(), bias_before = fc.bias.detach();

  GradcheckResult r = gradcheck_in_place([&] { return fc.forward(x); }, fc.named_parameters());
  INFO(r.message);
  CHECK(r.ok);
  CHECK(r.message.find("gradcheck_in_place passed: worst entry is ") == 0);
  CHECK((r.name == "weight" || r.name == "bias"));
  CHECK(same_bits(fc.weight, weight_before));
  CHECK(same_bits(fc.bias, bias_before));
  CHECK(fc.weight.grad().data() == weight_grad.data());  // the same tensor, not a copy
  check_values(fc.weight.grad(), std::vector<double>(6, 0.25));
  CHECK_FALSE(fc.bias.grad().defined());
}

TEST_CASE("grad/gradcheck_in_place: fails on a deliberately wrong gradient and names the entry") {
  Generator gen(138);
  Tensor a = leaf({2, 3}, gen);
  Tensor w = leaf({2, 3}, gen);
  const Tensor a_before = a.detach(), w_before = w.detach();

  SUBCASE("one wrong element of w, behind a correct a: w and the element are named") {
    // f = a * buggy(w): a's gradient is right, w's is wrong at [1,2] only.
    GradcheckResult r = gradcheck_in_place([&] { return a * identity_with_bug(w, /*wrong=*/5); },
                                           {{"a", a}, {"w", w}});
    INFO(r.message);
    CHECK_FALSE(r.ok);
    CHECK(r.input == 1);
    CHECK(r.name == "w");
    CHECK(r.flat_index == 5);
    CHECK(r.message.find("gradcheck_in_place FAILED: worst entry is w (2,3), element [1,2]") == 0);
    CHECK(same_bits(a, a_before));
    CHECK(same_bits(w, w_before));
    CHECK_FALSE(a.grad().defined());
    CHECK_FALSE(w.grad().defined());
  }

  SUBCASE("the same function with a correct backward passes (control)") {
    GradcheckResult r = gradcheck_in_place(
        [&] { return a * identity_with_bug(w, 5, /*factor=*/1); }, {{"a", a}, {"w", w}});
    INFO(r.message);
    CHECK(r.ok);
  }

  SUBCASE("a module whose output's backward doubles the gradient") {
    nn::Linear fc(3, 2);
    const Tensor x = randn({4, 3}, gen);
    GradcheckResult r =
        gradcheck_in_place([&] { return identity_doubled(fc.forward(x)); }, fc.named_parameters());
    INFO(r.message);
    CHECK_FALSE(r.ok);
    CHECK(std::abs(r.analytic - 2 * r.numeric) <= 1e-6 * std::abs(r.numeric));
    CHECK(r.message.find("gradcheck_in_place FAILED") == 0);
  }
}

TEST_CASE("grad/gradcheck_in_place: f throwing with an element perturbed leaves values and .grad") {
  Generator gen(139);
  Tensor w = leaf({2, 3}, gen);
  w.set_grad(full({2, 3}, real(3)));
  const Tensor w_before = w.detach();
  // The output changes shape on the third call: the first is the backward's,
  // the second has w[0,0] + eps, the third w[0,0] - eps.
  int calls = 0;
  auto f = [&] { return ++calls == 3 ? sum(w) : w * real(2); };
  check_error(
      [&] {
        (void)gradcheck_in_place(f, {{"w", w}});
      },
      {"gradcheck_in_place: the function's output was (2,3) at the first call and () when "
       "an input was perturbed"});
  CHECK(calls == 3);
  CHECK(same_bits(w, w_before));
  check_values(w.grad(), std::vector<double>(6, 3));
}

#endif  // AG_USE_DOUBLE

// The arguments are checked before any work, in both flavors.
TEST_CASE("grad/gradcheck_in_place: bad options, tensors and outputs are named errors") {
  using ag::testing::check_error;
  ag::Tensor w = ag::ones({2, 3}).requires_grad_();
  const ag::Tensor w_before = w.detach();
  auto f = [&] { return ag::mul(w, ag::real(2)); };

  ag::GradcheckOptions zero_step;
  zero_step.eps = 0;
  check_error(
      [&] {
        (void)ag::gradcheck_in_place(f, {{"w", w}}, zero_step);
      },
      {"gradcheck_in_place: invalid options eps 0, rtol 1e-06, atol 1e-08"});
  ag::GradcheckOptions nan_tolerance;
  nan_tolerance.atol = std::numeric_limits<double>::quiet_NaN();
  check_error(
      [&] {
        (void)ag::gradcheck_in_place(f, {{"w", w}}, nan_tolerance);
      },
      {"gradcheck_in_place: invalid options", "atol nan"});

  ag::Tensor constant = ag::ones({3});
  constant.set_name("c");
  check_error(
      [&] {
        (void)ag::gradcheck_in_place(f, {{"w", w}, {"scale", constant}});
      },
      {"gradcheck_in_place: scale 'c' (3) does not require grad"});
  check_error(
      [&] {
        (void)ag::gradcheck_in_place(f, {{"w", w}, {"missing", ag::Tensor()}});
      },
      {"gradcheck_in_place: tensor 1 ('missing') is an undefined tensor"});
  const ag::Tensor doubled = ag::mul(w, ag::real(2));
  check_error(
      [&] {
        (void)ag::gradcheck_in_place(f, {{"doubled", doubled}});
      },
      {"gradcheck_in_place: doubled (2,3) is not a leaf (made by MulBackward)"});

  auto constant_output = [&] { return ag::mul(constant, ag::real(2)); };
  check_error(
      [&] {
        (void)ag::gradcheck_in_place(constant_output, {{"w", w}});
      },
      {"gradcheck_in_place: the function's output (3) does not require grad"});
  auto no_grad_output = [&] {
    ag::NoGradGuard no_grad;
    return f();
  };
  check_error(
      [&] {
        (void)ag::gradcheck_in_place(no_grad_output, {{"w", w}});
      },
      {"gradcheck_in_place: the function's output (2,3) does not require grad", "NoGradGuard"});
  CHECK(same_bits(w, w_before));
  CHECK_FALSE(w.grad().defined());
}
