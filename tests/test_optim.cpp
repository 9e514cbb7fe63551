// Optimizers (layers/framework/optim.hpp): SGD and Adam steps on the quadratic
// L = sum((p - c)^2), whose gradient 2 (p - c) makes every update computable by
// hand; zero_grad, skipped parameters, in-place updates outside the graph, the
// constructor's checks, and clip_grad_norm.
//
// Every test uses p0 = [1, -2], c = [3, 1] unless it says otherwise:
// the first gradient is 2 (p0 - c) = 2 [-2, -3] = [-4, -6].
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "layers/framework/optim.hpp"
#include "tests/helpers.hpp"

namespace {

using namespace ag;
using ag::testing::check_error;
using ag::testing::check_values;
using ag::testing::leaf;

// L = sum((p - c)^2): fills p.grad with 2 (p - c) (after clearing it).
void quadratic_backward(optim::Optimizer& opt, const Tensor& p, const Tensor& c) {
  opt.zero_grad();
  sum(pow(p - c, 2)).backward();
}

}  // namespace

// ============================================================ SGD

TEST_CASE("optim/SGD: plain steps p = p - lr grad, by hand") {
  // lr 0.1: p1 = [1,-2] - 0.1 [-4,-6] = [1.4, -1.4];
  // grad 2 ([1.4,-1.4] - [3,1]) = [-3.2, -4.8]:  p2 = [1.72, -0.92]
  Tensor p = leaf(tensor({1, -2}));
  Tensor c = tensor({3, 1});
  optim::SGD opt({p}, 0.1);
  CHECK(opt.name() == "SGD");
  CHECK(opt.lr() == doctest::Approx(0.1));
  quadratic_backward(opt, p, c);
  opt.step();
  check_values(p, {1.4, -1.4});
  quadratic_backward(opt, p, c);
  opt.step();
  check_values(p, {1.72, -0.92});
  CHECK(p.is_leaf());  // updated in place, still the same leaf
}

TEST_CASE("optim/SGD: momentum 0.9 and weight decay 0.1, two steps by hand") {
  // step 1: g = grad + 0.1 p = [-4,-6] + [0.1,-0.2] = [-3.9,-6.2]; buf = g
  //         p1 = [1,-2] - 0.1 buf = [1.39, -1.38]
  // step 2: grad = 2 ([1.39,-1.38] - [3,1]) = [-3.22, -4.76]
  //         g = grad + 0.1 p1 = [-3.081, -4.898]
  //         buf = 0.9 [-3.9,-6.2] + g = [-6.591, -10.478]
  //         p2 = p1 - 0.1 buf = [2.0491, -0.3322]
  Tensor p = leaf(tensor({1, -2}));
  Tensor c = tensor({3, 1});
  optim::SGD opt({p}, 0.1, /*momentum=*/0.9, /*weight_decay=*/0.1);
  quadratic_backward(opt, p, c);
  opt.step();
  check_values(p, {1.39, -1.38});
  quadratic_backward(opt, p, c);
  opt.step();
  check_values(p, {2.0491, -0.3322});
}

// ============================================================ Adam

TEST_CASE("optim/Adam: steps 1 and 2 with bias correction, by hand") {
  // lr 0.1, b1 0.9, b2 0.999, eps 1e-8.
  // step 1: g = [-4,-6]; m = 0.1 g = [-0.4,-0.6]; v = 0.001 g^2 = [0.016, 0.036]
  //   bc1 = 1 - 0.9 = 0.1, bc2 = 1 - 0.999 = 0.001: m/bc1 = [-4,-6], sqrt(v/bc2) = [4,6]
  //   p1 = p0 - 0.1 [-4/(4+1e-8), -6/(6+1e-8)] = [1.09999999975, -1.9000000001666666]
  //   (Adam's first step is lr in size whatever the gradient's scale)
  // step 2: g = 2 (p1 - c) ~ [-3.8, -5.8]
  //   m = 0.9 [-0.4,-0.6] + 0.1 g ~ [-0.74, -1.12]
  //   v = 0.999 [0.016,0.036] + 0.001 g^2 ~ [0.030424, 0.069604]
  //   bc1 = 1 - 0.81 = 0.19, bc2 = 1 - 0.998001 = 0.001999
  //   m/bc1 ~ [-3.894737, -5.894737], sqrt(v/bc2) ~ [3.901232, 5.900798]
  //   p2 = p1 - 0.1 [-0.0998340, -0.0998972] = [1.199833513884299, -1.8001027074147888]
  //   (the last digits from the same formulas evaluated in double precision)
  Tensor p = leaf(tensor({1, -2}));
  Tensor c = tensor({3, 1});
  optim::Adam opt({p}, 0.1);
  CHECK(opt.betas().first == doctest::Approx(0.9));
  CHECK(opt.betas().second == doctest::Approx(0.999));
  quadratic_backward(opt, p, c);
  opt.step();
  check_values(p, {1.09999999975, -1.9000000001666666});
  quadratic_backward(opt, p, c);
  opt.step();
  check_values(p, {1.199833513884299, -1.8001027074147888});
}

TEST_CASE("optim/Adam: weight decay is added to the gradient (Adam's L2, not AdamW)") {
  // p = 0.5, c = 0.6, wd 1: grad = 2 (0.5 - 0.6) = -0.2, g = -0.2 + 1 * 0.5 = 0.3,
  // so p moves DOWN by lr: p1 = 0.5 - 0.1 * 0.3 / (0.3 + 1e-8) = 0.4000000033333332
  // (AdamW would move it up: -lr * sign(-0.2) minus lr * wd * p).
  Tensor p = leaf(tensor({0.5}));
  optim::Adam opt({p}, 0.1, {0.9, 0.999}, 1e-8, /*weight_decay=*/1);
  quadratic_backward(opt, p, tensor({0.6}));
  opt.step();
  check_values(p, {0.4000000033333332});
}

TEST_CASE("optim/Adam: 300 steps minimise the quadratic") {
  Generator gen(3);
  Tensor p = leaf(randn({3, 4}, gen));
  Tensor c = randn({3, 4}, gen) * real(2);
  optim::Adam opt({p}, 0.05);
  const double start = sum(pow(p - c, 2)).item();
  for (int i = 0; i < 300; ++i) {
    quadratic_backward(opt, p, c);
    opt.step();
  }
  const double end = sum(pow(p - c, 2)).item();
  INFO("loss " << start << " -> " << end);
  CHECK(start > 1);
  CHECK(end < 1e-4);
}

// ============================================================ common behaviour

TEST_CASE("optim/zero_grad clears every gradient, and a step without gradients does nothing") {
  Tensor p = leaf(tensor({1, -2})), q = leaf(tensor({5}));
  optim::SGD opt({p, q}, 0.1);
  sum(p * q).backward();
  CHECK(p.grad().defined());
  CHECK(q.grad().defined());
  opt.zero_grad();
  CHECK_FALSE(p.grad().defined());
  CHECK_FALSE(q.grad().defined());
  opt.step();
  check_values(p, {1, -2});
  check_values(q, {5});
  CHECK(opt.params().size() == 2);
  CHECK(opt.params()[1].is_same(q));
}

TEST_CASE("optim/step skips parameters without a gradient; their Adam state waits") {
  // q is not used for 3 steps: unchanged, and its step count stays 0, so its
  // first real update is a step-1 update: 0 - 0.1 * (-2) / (2 + 1e-8) = 0.0999999995.
  // (Had t advanced to 4, the update would be about 0.058.)
  Tensor p = leaf(tensor({1, -2})), q = leaf(tensor({0}));
  Tensor c = tensor({3, 1});
  optim::Adam opt({p, q}, 0.1);
  for (int i = 0; i < 3; ++i) {
    quadratic_backward(opt, p, c);
    opt.step();
  }
  check_values(q, {0});
  CHECK_FALSE(q.grad().defined());
  const std::vector<real> p_before = p.to_vector();
  quadratic_backward(opt, q, tensor({1}));  // only q has a gradient now
  opt.step();
  check_values(q, {0.0999999995});
  check_values(p, {p_before[0], p_before[1]});
}

TEST_CASE("optim/step records nothing, keeps grad mode, and bumps the parameter's version") {
  Tensor p = leaf(tensor({1, 2}));
  optim::SGD opt({p}, 0.5);
  Tensor y = p * p;  // saves p for its backward
  p.set_grad(tensor({1, 1}));
  const int64_t nodes = Node::live_count();
  const uint32_t version = p.version();
  opt.step();
  check_values(p, {0.5, 1.5});
  CHECK(is_grad_enabled());
  CHECK(p.is_leaf());
  CHECK(Node::live_count() == nodes);
  CHECK(p.version() > version);
  // y's graph saved the old p: backward through it now would be wrong, so it is refused.
  check_error([&] { sum(y).backward(); }, {"backward:", "changed in place"});
}

TEST_CASE("optim/errors: bad parameters and hyper-parameters") {
  Tensor w = leaf(ones({2, 3}));
  check_error([] { optim::SGD({}, 0.1); }, {"SGD:", "empty"});
  check_error([&] { optim::SGD({w, Tensor()}, 0.1); }, {"SGD:", "parameter 1", "undefined"});
  check_error(
      [&] {
        optim::Adam({w, w * real(2)}, 0.1);
      },
      {"Adam:", "parameter 1", "(2,3)", "not a leaf", "MulBackward"});
  Tensor frozen = ones({2, 3});
  frozen.set_name("W");
  check_error([&] { optim::SGD({frozen}, 0.1); },
              {"SGD:", "parameter 0 'W' (2,3)", "does not require grad"});
  check_error([&] { optim::SGD({w, w}, 0.1); }, {"SGD:", "parameter 1", "more than once"});
  check_error([&] { optim::SGD({w}, -1); }, {"SGD:", "invalid learning rate -1", "lr >= 0"});
  check_error([&] { optim::SGD({w}, 0.1, -0.5); }, {"SGD:", "invalid momentum -0.5"});
  check_error([&] { optim::SGD({w}, 0.1, 0, -1); }, {"SGD:", "invalid weight_decay -1"});
  check_error(
      [&] {
        optim::Adam({w}, 0.1, {1, 0.999});
      },
      {"Adam:", "invalid beta1 1", "0 <= beta1 < 1"});
  check_error([&] { optim::Adam({w}, 0.1, {0.9, -0.1}); }, {"Adam:", "invalid beta2 -0.1"});
  check_error([&] { optim::Adam({w}, 0.1, {0.9, 0.999}, -1); }, {"Adam:", "invalid eps -1"});
  check_error([&] { optim::Adam({w}, std::numeric_limits<real>::quiet_NaN()); },
              {"Adam:", "invalid learning rate nan"});
  optim::Adam opt({w}, 0.1);
  check_error([&] { opt.set_lr(-0.5); }, {"Adam:", "invalid learning rate -0.5"});
  opt.set_lr(0.25);
  CHECK(opt.lr() == 0.25);
}

// ============================================================ clip_grad_norm

TEST_CASE("optim/clip_grad_norm: returns the total norm, scales only above max_norm") {
  // grads [3,4] and [12]: total = sqrt(9 + 16 + 144) = 13.
  Tensor a = leaf(zeros({2})), b = leaf(zeros({1})), unused = leaf(zeros({4}));
  auto set = [&] {
    a.set_grad(tensor({3, 4}));
    b.set_grad(tensor({12}));
  };
  set();
  CHECK(optim::clip_grad_norm({a, b, unused}, 26) == doctest::Approx(13));
  check_values(a.grad(), {3, 4});  // 13 <= 26: untouched
  check_values(b.grad(), {12});
  CHECK_FALSE(unused.grad().defined());

  // max_norm 6.5: coef = 6.5 / (13 + 1e-6), so the new total norm is 6.5 (to 1e-7)
  const double coef = 6.5 / (13 + 1e-6);
  const TensorImpl* a_grad = a.grad().impl();
  CHECK(optim::clip_grad_norm({a, b, a}, 6.5) == doctest::Approx(13));  // a twice counts once
  check_values(a.grad(), {3 * coef, 4 * coef});
  check_values(b.grad(), {12 * coef});
  CHECK(a.grad().impl() == a_grad);  // nobody else held it: scaled in place
  CHECK(optim::clip_grad_norm({a, b}, 100) == doctest::Approx(6.5));

  set();
  CHECK(optim::clip_grad_norm({a, b}, 0) == doctest::Approx(13));
  check_values(a.grad(), {0, 0});
  check_error([&] { optim::clip_grad_norm({a}, -1); }, {"clip_grad_norm:", "max_norm -1"});
  check_error(
      [&] {
        optim::clip_grad_norm({a, Tensor()}, 1);
      },
      {"clip_grad_norm:", "parameter 1", "undefined"});
  CHECK(optim::clip_grad_norm({unused}, 1) == 0);  // no gradients: norm 0
}
