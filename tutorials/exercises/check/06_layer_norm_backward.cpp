// The checker of exercise 06 (make exercise-06): the learner's
// layer_norm_backward against the gradients of nn::layer_norm, alone and
// inside a training step.
#include "autograd/node.hpp"
#include "tutorials/exercises/06_layer_norm_backward.hpp"
#include "tutorials/exercises/checker.hpp"

#include <cmath>

using namespace ag;
using namespace ag::exercise;

namespace {

constexpr real kEps = 1e-5;

// What the forward saves, per row: x_hat = (x - mu) * rstd and rstd (N,1).
std::pair<Tensor, Tensor> normalised(const Tensor& x) {
  NoGradGuard values_only;
  const Tensor mu = mean(x, -1, /*keepdim=*/true);
  const Tensor var = mean(pow(x - mu, 2), -1, /*keepdim=*/true);
  const Tensor rstd = 1 / sqrt(var + kEps);
  return {(x - mu) * rstd, rstd};
}

// layer_norm's forward, with YOUR backward recorded as its derivative.
Tensor layer_norm_with_your_backward(const Tensor& x, const Tensor& gamma, const Tensor& beta) {
  auto [x_hat, rstd] = normalised(x);
  Tensor y;
  {
    NoGradGuard values_only;
    y = x_hat * gamma + beta;
  }
  record("LayerNormBackward", y, {x, gamma, beta},
         [x_hat = x_hat, rstd = rstd, gamma](const Tensor& g, const Tensor&) {
           LayerNormBackwardSteps steps;
           layer_norm_backward(g, x_hat, rstd, gamma, steps);
           return Grads{steps.grad_input, steps.grad_weight, steps.grad_bias};
         });
  return y;
}

// A LayerNorm, then a Linear to 3 classes, then cross-entropy.
struct Model {
  Tensor gamma, beta, weight, bias;
};
Tensor model_loss(const Model& m, const Tensor& x, const Tensor& labels, bool yours) {
  const Tensor h = yours ? layer_norm_with_your_backward(x, m.gamma, m.beta)
                         : nn::layer_norm(x, m.gamma, m.beta, kEps);
  return nn::cross_entropy(nn::linear(h, m.weight, m.bias), labels);
}

}  // namespace

int main() {
  ReferenceModeGuard plain;  // the library's plain formula code: the lines you write
  Checker check("06", "LayerNorm's backward [F3.6]",
                "tutorials/exercises/06_layer_norm_backward.cpp", "layer_norm_backward",
                "the gradients of nn::layer_norm (layers/basic/layer_norm.cpp)");
  const int64_t N = 4, d = 6;
  Generator gen(6);
  const Tensor x = randn({N, d}, gen) * real(2) + real(1), g = randn({N, d}, gen);
  const Tensor gamma = randn({d}, gen), beta = randn({d}, gen);
  const Tensor labels = tensor({0, 2, 1, 2});
  const Model start{gamma, beta, randn({3, d}, gen), randn({3}, gen)};
  check.inputs({{"x", x}, {"g = dL/dy", g}, {"gamma", gamma}, {"beta", beta},
                {"W (classifier)", start.weight}});

  // 1. Your backward on its own.
  const auto [x_hat, rstd] = normalised(x);
  LayerNormBackwardSteps yours;
  const bool finished = check.run([&] { layer_norm_backward(g, x_hat, rstd, gamma, yours); });
  Tensor rx = leaf(x, "x"), rw = leaf(gamma, "weight"), rb = leaf(beta, "bias");
  nn::layer_norm(rx, rw, rb, kEps).backward(g);
  const Tensor n = g * gamma;
  check.section("LayerNorm's backward at the seeded x, g      yours vs the reference");
  check.compare("n", yours.n, n, {"F3.6", "n = g * gamma, the gradient reaching x_hat: (N,d) * (d)"});
  check.compare("mean_n", yours.mean_n, mean(n, -1, true),
                {"F3.6", "mean_j n_j per row: mean(n, -1, /*keepdim=*/true), (N,1)"});
  check.compare("mean_n_xhat", yours.mean_n_xhat, mean(n * x_hat, -1, true),
                {"F3.6", "mean_j n_j x_hat_j per row: mean(n * x_hat, -1, true), (N,1)"});
  check.compare("grad_input", yours.grad_input, rx.grad(),
                {"F3.6", "dL/dx_i = rstd * (n_i - mean_j n_j - x_hat_i * mean_j n_j x_hat_j): the "
                         "direct path, the path through mu, the path through sigma^2"});
  check.compare("grad_weight", yours.grad_weight, rw.grad(),
                {"F3.6", "dL/dgamma = sum over the rows of g * x_hat: sum(g * x_hat, 0), (d)"});
  check.compare("grad_bias", yours.grad_bias, rb.grad(),
                {"F3.6", "dL/dbeta = sum over the rows of g: sum(g, 0), (d)"});

  // 2. Your backward inside one training step.
  const Model mine{leaf(gamma, "weight"), leaf(beta, "bias"), leaf(start.weight, "weight"),
                   leaf(start.bias, "bias")};
  const Model ref{leaf(gamma, "weight"), leaf(beta, "bias"), leaf(start.weight, "weight"),
                  leaf(start.bias, "bias")};
  Tensor mx = leaf(x, "x"), refx = leaf(x, "x");
  if (finished) check.run([&] { model_loss(mine, mx, labels, true).backward(); });
  model_loss(ref, refx, labels, false).backward();
  check.section("one step of LayerNorm, Linear(d,3) and cross-entropy with your backward");
  check.compare("dL/dx", mx.grad(), refx.grad(), {});
  check.compare("dL/dgamma", mine.gamma.grad(), ref.gamma.grad(), {});
  check.compare("dL/dbeta", mine.beta.grad(), ref.beta.grad(), {});
  check.compare("dL/dW", mine.weight.grad(), ref.weight.grad(), {});
  return check.verdict(
      "Your backward agrees on its own but not inside the model: check that each gradient has\n"
      "its input's shape (grad_weight and grad_bias (d), not (1,d)).");
}
