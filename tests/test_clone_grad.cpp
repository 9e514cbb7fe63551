// clone() and .grad() as a PyTorch user expects them: y = x.clone() is
// recorded (torch.clone is differentiable), detach() is the copy outside the
// graph, and .grad() is one tensor per parameter that backward() adds into in
// place, so a handle taken earlier sees every later gradient.
#include <doctest/doctest.h>

#include <cstring>

#include "layers/nn.hpp"
#include "tests/helpers.hpp"

using namespace ag;
using ag::testing::check_values;
using ag::testing::param;

TEST_CASE("engine: clone() is recorded, so the gradient flows back through it, as torch.clone") {
  Tensor x = param({1, 2, 3});
  x.set_name("x");
  Tensor y = x.clone();
  CHECK(y.requires_grad());
  REQUIRE(y.grad_fn() != nullptr);
  CHECK(std::strcmp(y.grad_fn()->name, "CloneBackward") == 0);
  CHECK(y.name() == "x");
  CHECK_FALSE(y.is_same(x));
  // The copy has its own elements.
  {
    NoGradGuard no_grad;
    y.mul_(10);
  }
  check_values(x, {1, 2, 3});
  sum(x.clone() * x).backward();  // d/dx sum(x * x) = 2x
  check_values(x.grad(), {2, 4, 6});
  // Under NoGradGuard, or of a tensor that needs no gradient, a clone records nothing.
  {
    NoGradGuard no_grad;
    CHECK(x.clone().grad_fn() == nullptr);
  }
  CHECK_FALSE(from_vector({1}).clone().requires_grad());
}

TEST_CASE("engine: detach() is the copy outside the graph") {
  Tensor x = param({1, 2});
  Tensor d = (x * real(3)).detach();
  CHECK_FALSE(d.requires_grad());
  CHECK(d.grad_fn() == nullptr);
  check_values(d, {3, 6});
}

TEST_CASE("grad/clone: finite differences through a clone") {
  if constexpr (!ag::testing::is_double) return;
  Generator gen(3);
  Tensor x = ag::testing::leaf({2, 3}, gen);
  ag::testing::check_gradients(
      [](const std::vector<Tensor>& in) { return tanh(in[0].clone()) * in[0]; }, {x});
}

TEST_CASE("engine: a .grad() handle kept across a later backward() sees the sum") {
  Tensor w = param({1, 2});
  sum(w * w).backward();
  Tensor g = w.grad();  // held across the next backward
  check_values(g, {2, 4});
  sum(w * real(3)).backward();
  CHECK(g.is_same(w.grad()));  // the same tensor, added into in place
  check_values(g, {5, 7});
  // A gradient set by hand is the tensor backward adds into, as in PyTorch.
  Tensor mine = from_vector({10, 20});
  w.set_grad(mine);
  sum(w).backward();
  check_values(mine, {11, 21});
  CHECK(w.grad().is_same(mine));
  // zero_grad() sets it to undefined: a handle taken before keeps its values.
  nn::Linear layer(2, 1);
  sum(layer.forward(ones({1, 2}))).backward();
  Tensor before = layer.weight.grad();
  layer.zero_grad();
  check_values(before, {1, 1});
  CHECK_FALSE(layer.weight.grad().defined());
}

TEST_CASE("engine: a retained non-leaf .grad() handle sees the sum too") {
  Tensor x = param({1, 2});
  Tensor h = x * real(2);
  h.retain_grad();
  Tensor loss = sum(h * h);
  loss.backward(Tensor(), /*retain_graph=*/true);
  Tensor g = h.grad();
  check_values(g, {4, 8});
  loss.backward();
  CHECK(g.is_same(h.grad()));
  check_values(g, {8, 16});
}

TEST_CASE("optim/clip_grad_norm: scales the gradient tensor in place, a held handle too") {
  Tensor a = param({0, 0});
  a.set_grad(from_vector({3, 4}));  // norm 5
  Tensor held = a.grad();
  CHECK(optim::clip_grad_norm({a}, 1) == doctest::Approx(5));
  const double coef = 1 / (5 + 1e-6);
  CHECK(a.grad().is_same(held));
  check_values(held, {3 * coef, 4 * coef});
}
