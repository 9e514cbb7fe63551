// The checker of exercise 02 (make exercise-02): the learner's softmax_backward
// against the derivative ag::softmax records, alone and inside a training step.
#include "autograd/node.hpp"
#include "tutorials/exercises/02_softmax_backward.hpp"
#include "tutorials/exercises/checker.hpp"

using namespace ag;
using namespace ag::exercise;

namespace {

// softmax forward as the library computes it, with YOUR backward recorded as its derivative.
Tensor softmax_with_your_backward(const Tensor& x, int64_t dim) {
  Tensor y;
  {
    NoGradGuard values_only;
    y = softmax(x, dim);
  }
  record("SoftmaxBackward", y, {x}, [dim](const Tensor& g, const Tensor& out) {
    SoftmaxBackwardSteps steps;
    softmax_backward(g, out, dim, steps);
    return Grads{steps.grad_input};
  });
  return y;
}

// Chapter 02's linear softmax classifier: p = softmax(x W^T + b), L = mean_i -log p_{y_i}.
struct Classifier {
  Tensor weight, bias;
};
Tensor classifier_loss(const Classifier& c, const Tensor& x, const Tensor& labels, bool yours) {
  const Tensor logits = nn::linear(x, c.weight, c.bias);
  const Tensor p = yours ? softmax_with_your_backward(logits, 1) : softmax(logits, 1);
  return nn::nll_loss(log(p), labels);
}

}  // namespace

int main() {
  ReferenceModeGuard plain;  // the library's plain formula code: the lines you write
  Checker check("02", "softmax's backward [F0.2]", "tutorials/exercises/02_softmax_backward.cpp",
                "softmax_backward", "the backward ag::softmax records (autograd/ops_softmax.cpp)");
  const int64_t N = 6, C = 3;
  Generator gen(2);
  const Tensor x = randn({N, C}, gen), g = randn({N, C}, gen);
  const Tensor points = randn({N, 2}, gen), labels = tensor({0, 1, 2, 2, 1, 0});
  const Classifier start{randn({C, 2}, gen), randn({C}, gen)};
  check.inputs({{"x (logits)", x}, {"g = dL/dy", g}, {"points", points}, {"W", start.weight},
                {"b", start.bias}});

  // 1. Your backward on its own, at y = softmax(x).
  const Tensor y = softmax(x, 1);
  SoftmaxBackwardSteps yours;
  const bool finished = check.run([&] { softmax_backward(g, y, 1, yours); });
  Tensor rx = leaf(x, "x");
  softmax(rx, 1).backward(g);
  check.section("softmax's backward at y = softmax(x), dim 1      yours vs the reference");
  check.compare("dot", yours.dot, sum(g * y, 1, /*keepdim=*/true),
                {"F0.2", "sum_i g_i y_i along dim, keepdim: sum(g * y, dim, true), (N,C) -> (N,1)"});
  check.compare("grad_input", yours.grad_input, rx.grad(),
                {"F0.2", "softmax's derivative dL/dx_j = y_j (g_j - sum_i g_i y_i), from "
                         "dy_i/dx_j = y_i (delta_ij - y_j)"});

  // 2. Your backward inside one training step of chapter 02's classifier.
  const Classifier mine{leaf(start.weight, "weight"), leaf(start.bias, "bias")};
  const Classifier ref{leaf(start.weight, "weight"), leaf(start.bias, "bias")};
  if (finished) check.run([&] { classifier_loss(mine, points, labels, true).backward(); });
  classifier_loss(ref, points, labels, false).backward();
  check.section("one step of chapter 02's classifier with your backward:\n"
                "L = mean_i -log softmax(x_i W^T + b)_{y_i}");
  check.compare("dL/dW", mine.weight.grad(), ref.weight.grad(), {});
  check.compare("dL/db", mine.bias.grad(), ref.bias.grad(), {});
  return check.verdict(
      "Your backward agrees on its own but not inside the model: check that it returns a\n"
      "gradient for every input shape, along `dim` (not a fixed dimension).");
}
