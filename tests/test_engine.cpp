// The backward engine: gradient accumulation, graph lifetime, grad mode,
// detach, retain_grad, in-place updates of parameters, anomaly detection.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>

#include "autograd/trace.hpp"
#include "layers/nn.hpp"
#include "tests/helpers.hpp"
#include "tests/isolated.hpp"

using namespace ag;
using ag::testing::AnomalyMode;
using ag::testing::check_error;
using ag::testing::check_values;
using ag::testing::is_double;
using ag::testing::param;
using ag::testing::run_in_child;

namespace {

// In a child process: 0 when every node made since `before` is gone again,
// else prints how many are left (for run_in_child to report) and returns 2.
int all_nodes_freed_since(int64_t before) {
  if (Node::live_count() == before) return 0;
  std::printf("%lld nodes still alive after the graph went out of scope",
              static_cast<long long>(Node::live_count() - before));
  return 2;
}

}  // namespace

// --- gradients summed where a tensor is used more than once -------------------------

TEST_CASE("engine: b=a+a; c=b+b gives dc/da = 4 everywhere") {
  Tensor a = param({1, -2, 3});
  Tensor b = a + a;
  Tensor c = b + b;
  c.backward(ones({3}));
  REQUIRE(a.grad().defined());
  check_values(a.grad(), {4, 4, 4});
}

TEST_CASE("engine: x*x gives 2x (one tensor as both inputs of mul)") {
  Tensor x = param({1, -2, 0.5});
  sum(x * x).backward();
  check_values(x.grad(), {2, -4, 1});
}

TEST_CASE("engine: b=a*a; c=b*b gives dc/da = 4a^3") {
  Tensor a = param({1, -2, 0.5});
  Tensor b = a * a;
  sum(b * b).backward();
  check_values(a.grad(), {4, -32, 0.5});
}

TEST_CASE("engine: one tensor feeding three ops receives the sum of three gradients") {
  Tensor a = param({0, 1, -1});
  // L = sum(2a + exp(a) + a^2):  dL/da = 2 + exp(a) + 2a
  Tensor L = sum(a * real(2) + exp(a) + a * a);
  L.backward();
  check_values(a.grad(), {2 + 1 + 0, 2 + std::exp(1.0) + 2, 2 + std::exp(-1.0) - 2});
}

// --- accumulation and clearing ------------------------------------------------------

TEST_CASE("engine: leaf gradients accumulate over two backward() calls") {
  Tensor x = param({1, 2, 3});
  Tensor L = sum(x * x);
  L.backward(Tensor(), /*retain_graph=*/true);
  check_values(x.grad(), {2, 4, 6});
  L.backward();
  check_values(x.grad(), {4, 8, 12});
}

TEST_CASE("engine: accumulation over two separate graphs") {
  Tensor x = param({1, 2});
  sum(x * real(3)).backward();
  sum(x * x).backward();
  check_values(x.grad(), {3 + 2, 3 + 4});
}

TEST_CASE("engine: set_grad(Tensor()) clears the gradient; the next backward starts afresh") {
  Tensor x = param({1, 2});
  sum(x * x).backward();
  check_values(x.grad(), {2, 4});
  x.set_grad(Tensor());  // PyTorch's zero_grad(set_to_none=True)
  CHECK_FALSE(x.grad().defined());
  sum(x * real(5)).backward();
  check_values(x.grad(), {5, 5});
}

TEST_CASE("engine: set_grad with a tensor replaces the gradient, then backward adds to it") {
  Tensor x = param({1, 2});
  x.set_grad(tensor({10, 20}));
  sum(x * x).backward();
  check_values(x.grad(), {12, 24});
}

// --- the upstream gradient ------------------------------------------------------------

TEST_CASE("engine: backward with an explicit upstream gradient on a non-scalar") {
  Tensor x = param({1, 2, 3});
  Tensor y = x * x;  // dy_i/dx_i = 2 x_i
  y.backward(tensor({1, 10, 100}));
  check_values(x.grad(), {2, 40, 600});
}

TEST_CASE("engine: backward with an explicit gradient through a broadcast") {
  Tensor a = tensor({{1, 2, 3}, {4, 5, 6}});
  a.requires_grad_();
  Tensor b = param({10, 20, 30});
  Tensor y = a * b;  // (2,3) * (3,) -> (2,3)
  y.backward(tensor({{1, 1, 1}, {2, 2, 2}}));
  check_values(a.grad(), {10, 20, 30, 20, 40, 60});
  check_values(b.grad(), {1 + 8, 2 + 10, 3 + 12});  // summed over the broadcast dim
}

TEST_CASE("engine: backward on a 0-dim and on a 1-element tensor seeds 1") {
  Tensor x = param({3});
  (x * x).backward();  // shape (1): one element, no gradient needed
  check_values(x.grad(), {6});
  x.set_grad(Tensor());
  sum(x * x).backward();  // shape ()
  check_values(x.grad(), {6});
}

TEST_CASE("engine: backward on a leaf") {
  SUBCASE("scalar leaf: dx/dx = 1") {
    Tensor s = scalar(2);
    s.requires_grad_();
    s.backward();
    check_values(s.grad(), {1});
  }
  SUBCASE("non-scalar leaf with a gradient, which is copied, not aliased") {
    Tensor x = param({1, 2});
    Tensor g = tensor({5, 6});
    x.backward(g);
    check_values(x.grad(), {5, 6});
    g.data()[0] = 100;  // changing the caller's tensor afterwards changes nothing
    check_values(x.grad(), {5, 6});
    x.backward(g);
    check_values(x.grad(), {105, 12});
  }
}

// --- a deep graph ------------------------------------------------------------------------

TEST_CASE("engine: a chain of 100,000 ops backpropagates without stack overflow") {
  const int n = 50000;  // two ops per step: 100,000 nodes
  const real c = real(0.99999), b = real(1e-5);
  Tensor x = param({0.5});
  Tensor y = x;
  for (int i = 0; i < n; ++i) y = y * c + b;
  y.backward();
  // y_n = c^n x + b (1 - c^n) / (1 - c), so dy_n/dx = c^n
  const double cn = std::pow(double(c), n);
  const double expected_y = cn * 0.5 + double(b) * (1 - cn) / (1 - double(c));
  const double tolerance = is_double ? 1e-9 : 1e-3;  // float rounds 100,000 times
  check_values(y, {expected_y}, tolerance);
  check_values(x.grad(), {cn}, tolerance);
}

TEST_CASE("engine: an RNN-like chain of 100,000 ops can be dropped without backward()") {
  // An RNN unrolled over many steps, evaluated without NoGradGuard and never
  // backpropagated: the whole graph is destroyed when the last tensor goes
  // out of scope. That destruction must not recurse once per node. Each step
  // h = tanh(h * w + x) makes 3 nodes; MulBackward keeps copies of h and w.
  std::string outcome = run_in_child([] {
    const int64_t before = Node::live_count();
    const int steps = 33334;
    {
      Tensor w = param({0.5, -0.5});
      Tensor x = tensor({0.1, 0.2});
      Tensor h = zeros({2});
      for (int i = 0; i < steps; ++i) h = tanh(h * w + x);
      if (Node::live_count() != before + 3 * steps) {
        std::printf("%lld nodes recorded, expected %d",
                    static_cast<long long>(Node::live_count() - before), 3 * steps);
        return 2;
      }
    }
    return all_nodes_freed_since(before);
  });
  INFO(outcome);
  CHECK(outcome.empty());
}

TEST_CASE("engine: a chain of 100,000 ops kept by retain_graph can be dropped afterwards") {
  std::string outcome = run_in_child([] {
    const int64_t before = Node::live_count();
    {
      Tensor x = param({0.5});
      Tensor y = x;
      for (int i = 0; i < 50000; ++i) y = y * real(0.99999) + real(1e-5);
      y.backward(Tensor(), /*retain_graph=*/true);
      if (!x.grad().defined()) {
        std::printf("no gradient reached x");
        return 2;
      }
    }
    return all_nodes_freed_since(before);
  });
  INFO(outcome);
  CHECK(outcome.empty());
}

// --- graph memory ------------------------------------------------------------------------

TEST_CASE("engine: nodes are counted and freed with the tensors that hold them") {
  const int64_t before = Node::live_count();
  Tensor x = param({1, 2});
  {
    Tensor y = x * x;
    Tensor z = exp(y);
    CHECK(Node::live_count() == before + 2);
  }
  CHECK(Node::live_count() == before);
}

TEST_CASE("engine: backward frees the intermediate nodes at once; the root keeps only its own") {
  const int64_t before = Node::live_count();
  Tensor x = param({1, 2});
  {
    Tensor L = sum(exp(x * real(2)) + x);  // mul, exp, add, sum
    CHECK(Node::live_count() == before + 4);
    L.backward();
    // Only L is alive; its own node stays (released) so that a second
    // backward can say what went wrong.
    CHECK(Node::live_count() == before + 1);
    REQUIRE(L.grad_fn() != nullptr);
    CHECK(L.grad_fn()->released);
    CHECK(L.grad_fn()->inputs.empty());
  }
  CHECK(Node::live_count() == before);
  check_values(x.grad(), {2 * std::exp(2.0) + 1, 2 * std::exp(4.0) + 1}, 1e-5);
}

TEST_CASE("engine: backward frees the saved tensors of every node") {
  Tensor x = param({1, 2});
  Tensor w = param({3, 4});
  Tensor L = sum(x * w);  // MulBackward saves x and w
  const long x_uses = x.use_count(), w_uses = w.use_count();
  L.backward();
  CHECK(x.use_count() < x_uses);
  CHECK(w.use_count() < w_uses);
  CHECK(x.use_count() == 1);
  CHECK(w.use_count() == 1);
}

TEST_CASE("engine: with retain_graph the nodes are kept and a second backward works") {
  const int64_t before = Node::live_count();
  Tensor x = param({1, 2});
  {
    Tensor L = sum(exp(x * real(2)) + x);
    L.backward(Tensor(), /*retain_graph=*/true);
    CHECK(Node::live_count() == before + 4);
    CHECK_FALSE(L.grad_fn()->released);
    L.backward();  // second time: allowed, and this one frees the graph
    CHECK(Node::live_count() == before + 1);
    check_error([&] { L.backward(); }, {"second time", "SumBackward"});
  }
  CHECK(Node::live_count() == before);
  check_values(x.grad(), {2 * (2 * std::exp(2.0) + 1), 2 * (2 * std::exp(4.0) + 1)}, 1e-5);
}

// --- grad mode ---------------------------------------------------------------------------

TEST_CASE("engine: NoGradGuard records nothing") {
  Tensor x = param({1, 2});
  const int64_t before = Node::live_count();
  NoGradGuard no_grad;
  Tensor y = exp(x * x) + x;
  CHECK(y.grad_fn() == nullptr);
  CHECK_FALSE(y.requires_grad());
  CHECK(y.is_leaf());
  CHECK(Node::live_count() == before);
  check_values(y, {std::exp(1.0) + 1, std::exp(4.0) + 2}, 1e-5);
}

TEST_CASE("engine: NoGradGuard restores grad mode on exit, nested guards too") {
  REQUIRE(is_grad_enabled());
  {
    NoGradGuard outer;
    CHECK_FALSE(is_grad_enabled());
    {
      NoGradGuard inner;
      CHECK_FALSE(is_grad_enabled());
    }
    CHECK_FALSE(is_grad_enabled());  // the inner guard restores "off", not "on"
  }
  CHECK(is_grad_enabled());
  Tensor x = param({1});
  CHECK((x * x).requires_grad());
}

TEST_CASE("engine: NoGradGuard restores grad mode when an exception leaves its scope") {
  try {
    NoGradGuard no_grad;
    (void)matmul(zeros({2, 3}), zeros({2, 3}));
  } catch (const Error&) {
  }
  CHECK(is_grad_enabled());
}

TEST_CASE("engine: set_grad_enabled") {
  Tensor x = param({1, 2});
  set_grad_enabled(false);
  Tensor y = x * x;
  set_grad_enabled(true);  // before any check: a failing check must not leave it off
  CHECK_FALSE(y.requires_grad());
  CHECK(y.grad_fn() == nullptr);
  Tensor z = x * x;
  CHECK(z.requires_grad());
  REQUIRE(z.grad_fn() != nullptr);
  CHECK(std::string(z.grad_fn()->name) == "MulBackward");
  {
    NoGradGuard no_grad;
    set_grad_enabled(true);  // explicitly back on inside a guard
    CHECK((x * x).requires_grad());
  }  // the guard restores what was there before it: on
  CHECK(is_grad_enabled());
}

// --- what gets a gradient ------------------------------------------------------------------

TEST_CASE("engine: detach cuts the graph") {
  Tensor x = param({1, 2});
  Tensor y = x * x;
  Tensor d = y.detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.grad_fn() == nullptr);
  CHECK(d.is_leaf());
  check_values(d, {1, 4});
  // L = 2y + 3d: only the 2y path reaches x: dL/dx = 2 * 2x
  sum(y * real(2) + d * real(3)).backward();
  check_values(x.grad(), {4, 8});
  CHECK_FALSE(d.grad().defined());
}

TEST_CASE("engine: intermediate tensors have no grad after backward unless retain_grad()") {
  Tensor x = param({1, 2});
  Tensor h = x * real(3);
  Tensor kept = h * h;
  kept.retain_grad();
  Tensor L = sum(kept + h);
  L.backward();
  CHECK_FALSE(h.grad().defined());
  CHECK_FALSE(L.grad().defined());  // the root is an intermediate too
  REQUIRE(kept.grad().defined());
  check_values(kept.grad(), {1, 1});
  // dL/dx = d(9x^2 + 3x)/dx = 18x + 3
  check_values(x.grad(), {21, 39});
}

TEST_CASE("engine: retain_grad on the root keeps its seed") {
  Tensor x = param({1, 2});
  Tensor L = sum(x * x);
  L.retain_grad();
  L.backward();
  REQUIRE(L.grad().defined());
  check_values(L.grad(), {1});
}

TEST_CASE("engine: a tensor that does not require grad gets no grad") {
  Tensor x = param({1, 2});
  Tensor c = tensor({3, 4});
  sum(x * c).backward();
  check_values(x.grad(), {3, 4});
  CHECK_FALSE(c.grad().defined());
}

TEST_CASE("engine: a branch whose input does not require grad") {
  Tensor x = param({1, 2});
  Tensor c = tensor({3, 4});
  Tensor constant_branch = exp(c) * c;  // no input requires grad: no node
  CHECK_FALSE(constant_branch.requires_grad());
  CHECK(constant_branch.grad_fn() == nullptr);
  // L = sum(x * branch + x^2): dL/dx = branch + 2x
  sum(x * constant_branch + x * x).backward();
  check_values(x.grad(), {std::exp(3.0) * 3 + 2, std::exp(4.0) * 4 + 4}, 1e-5);
  CHECK_FALSE(c.grad().defined());
  CHECK_FALSE(constant_branch.grad().defined());
}

// --- gradients as plain values ---------------------------------------------------------------

TEST_CASE("engine: leaf .grad does not alias another leaf's .grad") {
  Tensor a = param({1, 2});
  Tensor b = param({3, 4});
  sum(a + b).backward();  // add's backward hands the same gradient to both
  REQUIRE(a.grad().defined());
  REQUIRE(b.grad().defined());
  CHECK_FALSE(a.grad().is_same(b.grad()));
  {
    NoGradGuard no_grad;
    Tensor ga = a.grad();
    ga.mul_(10);  // gradient clipping style, in place
  }
  check_values(a.grad(), {10, 10});
  check_values(b.grad(), {1, 1});
}

TEST_CASE("engine: leaf .grad does not alias the upstream gradient passed to backward") {
  Tensor a = param({1, 2});
  Tensor y = a + real(1);  // its backward passes the gradient through unchanged
  Tensor g = tensor({5, 6});
  y.backward(g);
  check_values(a.grad(), {5, 6});
  g.data()[1] = 100;
  check_values(a.grad(), {5, 6});
}

TEST_CASE("engine: retained gradients of two intermediates do not alias each other") {
  Tensor x = param({1, 2});
  Tensor u = x * real(2);
  Tensor v = x * real(3);
  u.retain_grad();
  v.retain_grad();
  sum(u + v).backward();
  REQUIRE(u.grad().defined());
  REQUIRE(v.grad().defined());
  Tensor gu = u.grad();
  gu.mul_(10);
  check_values(v.grad(), {1, 1});
}

// --- in-place updates of parameters --------------------------------------------------------

TEST_CASE("engine: an SGD step inside NoGradGuard updates the parameter and bumps its version") {
  Tensor w = param({1, 2});
  sum(w * w).backward();  // grad 2w = (2, 4)
  const uint32_t version = w.version();
  {
    NoGradGuard no_grad;
    w.add_(w.grad(), real(-0.1));
  }
  check_values(w, {0.8, 1.6});
  CHECK(w.version() == version + 1);
  CHECK(w.requires_grad());
  CHECK(w.is_leaf());
  // The parameter still works in a new graph.
  w.set_grad(Tensor());
  sum(w * w).backward();
  check_values(w.grad(), {1.6, 3.2});
}

TEST_CASE("engine: every in-place op bumps the version") {
  Tensor t = tensor({1, 2});
  uint32_t v = t.version();
  t.fill_(3);
  CHECK(t.version() == ++v);
  t.zero_();
  CHECK(t.version() == ++v);
  t.add_(tensor({1, 1}), 2);
  CHECK(t.version() == ++v);
  t.mul_(3);
  CHECK(t.version() == ++v);
  t.copy_(tensor({7, 8}));
  CHECK(t.version() == ++v);
  check_values(t, {7, 8});
}

TEST_CASE("engine: changing a saved input in place makes backward refuse") {
  Tensor w = param({1, 2});
  Tensor x = tensor({3, 4});  // does not require grad: in-place is allowed
  Tensor L = sum(w * x);      // MulBackward saved x at version 0
  x.mul_(2);
  check_error([&] { L.backward(); }, {"changed in place", "MulBackward", "version 0 then, 1 now"});
}

// --- anomaly detection -----------------------------------------------------------------------

TEST_CASE("engine: without anomaly detection a NaN passes silently") {
  REQUIRE_FALSE(is_anomaly_enabled());
  Tensor y = log(tensor({-1}));
  CHECK(std::isnan(y.item()));
}

TEST_CASE("engine: anomaly detection names the forward op that made a NaN") {
  AnomalyMode anomaly;
  Tensor x = param({1, -1});
  check_error([&] { (void)log(x); },
              {"anomaly: the op log (recorded as LogBackward)", "nan", "flat index 1"});
  check_error([&] { (void)log(tensor({2, -2})); }, {"anomaly", "Log"});  // also on constants
}

TEST_CASE("engine: anomaly detection reports an infinite gradient made by backward") {
  AnomalyMode anomaly;
  // sqrt(0) = 0 is fine; its derivative 1 / (2 sqrt(0)) is inf.
  Tensor x = param({4, 0});
  Tensor y = sqrt(x);
  check_values(y, {2, 0});
  // The user called sqrt: the report must name SqrtBackward and say that the
  // inf is in a gradient, not name a helper op used inside its formula.
  check_error([&] { sum(y).backward(); }, {"anomaly", "SqrtBackward", "gradient"});
}

TEST_CASE("engine: anomaly detection checks an infinite upstream gradient") {
  AnomalyMode anomaly;
  Tensor x = param({0, 1});
  Tensor y = tanh(x);
  check_error(
      [&] {
        y.backward(tensor({1, std::numeric_limits<real>::infinity()}));
      },
      {"anomaly", "TanhBackward", "gradient", "flat index 1"});
}

TEST_CASE("engine: anomaly mode is off again after the anomaly tests") {
  { AnomalyMode anomaly; }
  CHECK_FALSE(is_anomaly_enabled());
}

// --- gradients in flight are kept apart from the .grad the user sees ----------------------

TEST_CASE("engine: a retained gradient does not leak into a second backward") {
  Tensor x = param({1, 2});
  Tensor b = x * real(2);
  b.retain_grad();
  Tensor loss = sum(b);
  loss.backward(Tensor(), /*retain_graph=*/true);
  loss.backward();
  check_values(x.grad(), {4, 4});  // 2 + 2, not 2 + (2 + 2)
  check_values(b.grad(), {2, 2});  // retained gradients accumulate, as leaves' do
}

TEST_CASE("engine: a retained root gradient does not leak into a second backward") {
  Tensor x = param({1, 2});
  Tensor loss = sum(x * x);
  loss.retain_grad();
  loss.backward(Tensor(), /*retain_graph=*/true);
  loss.backward();
  check_values(x.grad(), {4, 8});  // twice 2x
  check_values(loss.grad(), {2});
}

TEST_CASE("engine: a backward interrupted by an error leaves nothing behind for the next one") {
  Tensor x = param({1, 2});
  Tensor c = tensor({1, 1});
  Tensor h = x * real(3);
  Tensor y = h * c;        // reads c
  Tensor z = h * real(1);  // a second path from h
  c.add_(ones({2}));       // c changed after y used it: backward through y must fail
  check_error([&] { sum(y + z).backward(Tensor(), /*retain_graph=*/true); }, {"changed in place"});
  x.set_grad(Tensor());
  sum(z).backward();  // through h again: no partial gradient from the failed run
  check_values(x.grad(), {3, 3});
}

TEST_CASE("engine: changing a mask in place after masked_fill or where used it is caught") {
  Tensor x = param({1, 2, 3});
  Tensor mask = tensor({1, 0, 0});
  Tensor y = masked_fill(x, mask, 0);
  mask.fill_(0);
  check_error([&] { sum(y).backward(); }, {"MaskedFillBackward", "changed in place"});

  Tensor condition = tensor({1, 0, 1});
  Tensor w = where(condition, x, zeros({3}));
  condition.fill_(0);
  check_error([&] { sum(w).backward(); }, {"WhereBackward", "changed in place"});
}

TEST_CASE("engine: a deep chain of masked_fill is freed without recursion") {
  Tensor y = param({1, 2});
  Tensor mask = tensor({0, 1});
  for (int i = 0; i < 100000; ++i) y = masked_fill(y, mask, 0);
  y = Tensor();  // dropping the graph must not overflow the stack
  CHECK_FALSE(y.defined());
}

TEST_CASE("engine: a node never adds into a .grad it is reading (y.backward(w.grad())") {
  // Linear's backward adds dL/dW into W's sum while it runs (GradSums): here
  // that sum is also the upstream gradient, and then also the input x.
  Generator gen(3);
  const Tensor x = randn({3, 3}, gen);
  Tensor w = randn({3, 3}, gen);
  w.requires_grad_();
  sum(nn::linear(x, w)).backward();
  Tensor g = w.grad().clone();
  Tensor expected;
  {
    NoGradGuard no_grad;
    expected = g + matmul(transpose(g, 0, 1), x);  // dL/dW = seed^T x, added to the sum
  }
  nn::linear(x, w).backward(w.grad());
  CHECK(ag::testing::max_abs_diff(w.grad(), expected) <= 1e-5);
  // x is W's .grad itself: dL/dW = ones^T x, added to that same .grad
  g = w.grad().clone();
  {
    NoGradGuard no_grad;
    expected = g + matmul(transpose(ones({3, 3}), 0, 1), g);
  }
  sum(nn::linear(w.grad(), w)).backward();
  CHECK(ag::testing::max_abs_diff(w.grad(), expected) <= 1e-5);
}

namespace {
// d(2x)/dx applied to g element by element, written where
// GradSums::output_gradient_or_new says; `reused` tells whether that was g.
Tensor doubled_in_place(const Tensor& x, bool& reused) {
  Tensor y = Tensor::empty(x.shape());
  for (int64_t i = 0; i < x.numel(); ++i) y.data()[i] = 2 * x.data()[i];
  record("DoubledBackward", y, {x},
         [&reused](const Tensor& g, const Tensor&, const GradSums& sums) {
           Tensor d = sums.output_gradient_or_new(g);
           reused = d.impl() == g.impl();
           for (int64_t i = 0; i < g.numel(); ++i) d.data()[i] = 2 * g.data()[i];
           return Grads{d};
         });
  return y;
}
}  // namespace

TEST_CASE("engine: a node writes over its output's gradient only when the engine alone holds it") {
  Tensor x = param({0.5, 1, -1});
  const Tensor c = tensor({1, -2, 3});
  const std::vector<double> twice_c = {2, -4, 6};
  bool reused = false;
  // a gradient made by mul's backward, held by nothing else: written over
  sum(doubled_in_place(x, reused) * c).backward();
  CHECK(reused);
  check_values(x.grad(), twice_c);
  // kept as the output's .grad: a new tensor, and .grad stays dL/dy
  x.set_grad(Tensor());
  Tensor y = doubled_in_place(x, reused);
  y.retain_grad();
  sum(y * c).backward();
  CHECK_FALSE(reused);
  check_values(y.grad(), {1, -2, 3});
  check_values(x.grad(), twice_c);
  // the gradient given to backward(): the caller's, left as it was
  x.set_grad(Tensor());
  Tensor given = c.clone();
  doubled_in_place(x, reused).backward(given);
  CHECK_FALSE(reused);
  check_values(given, {1, -2, 3});
  check_values(x.grad(), twice_c);
  // under anomaly detection and while a trace prints every gradient: new tensors
  {
    AnomalyMode anomaly;
    x.set_grad(Tensor());
    sum(doubled_in_place(x, reused) * c).backward();
    CHECK_FALSE(reused);
    check_values(x.grad(), twice_c);
  }
  {
    std::FILE* sink = std::tmpfile();
    REQUIRE(sink != nullptr);
    set_trace(true, sink);
    x.set_grad(Tensor());
    sum(doubled_in_place(x, reused) * c).backward();
    set_trace(false);
    std::fclose(sink);
    CHECK_FALSE(reused);
    check_values(x.grad(), twice_c);
  }
  // add's backward hands one g to both inputs: the first node to run finds it
  // shared, the second alone
  x.set_grad(Tensor());
  Tensor x2 = param({2, -3, 4});
  bool reused1 = false, reused2 = false;
  sum((doubled_in_place(x, reused1) + doubled_in_place(x2, reused2)) * c).backward();
  CHECK(reused1 != reused2);
  check_values(x.grad(), twice_c);
  check_values(x2.grad(), twice_c);
}
