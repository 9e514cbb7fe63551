// The checker of exercise 03 (make exercise-03): the learner's
// point_attention_forward against nn::PointAttention::forward.
#include "tutorials/exercises/03_point_attention.hpp"
#include "tutorials/exercises/checker.hpp"

using namespace ag;
using namespace ag::exercise;

int main() {
  ReferenceModeGuard plain;  // the library's plain formula code: the lines you write
  Checker check("03", "point attention's forward [F0.1]-[F0.4]",
                "tutorials/exercises/03_point_attention.cpp", "point_attention_forward",
                "nn::PointAttention::forward (layers/attention/point_attention.cpp)");
  const int64_t B = 2, T = 5, H = 4;
  Generator gen(3);
  const Tensor x = randn({B, T, H}, gen), w_e = randn({1, H}, gen), b_e = randn({1}, gen);
  const Tensor r = randn({B, H}, gen);  // L = sum(context * R): every gradient non-trivial
  check.inputs({{"x", x}, {"W_e", w_e}, {"b_e", b_e}});

  // Yours: forward, then backward through your ops.
  Tensor yx = leaf(x, "x"), yw = leaf(w_e, "weight"), yb = leaf(b_e, "bias");
  PointAttentionSteps yours;
  if (check.run([&] { point_attention_forward(yx, yw, yb, yours); }) &&
      yours.context.defined() && yours.context.requires_grad() && yours.context.shape() == r.shape())
    check.run([&] { sum(yours.context * r).backward(); });

  // The reference: the layer, with the same weights.
  nn::PointAttention layer(H);
  {
    NoGradGuard no_grad;
    layer.linear->weight.copy_(w_e);
    layer.linear->bias.copy_(b_e);
  }
  Tensor rx = leaf(x, "x");
  const nn::AttentionOutput out = layer.forward(rx);
  sum(out.context * r).backward();
  Tensor e;
  {
    NoGradGuard no_grad;  // the layer's first line, for its value
    e = layer.linear->forward(rx);
  }

  check.section("the forward, step by step      yours vs the reference");
  check.compare("e", yours.e, e,
                {"F0.1", "e_i = W_e x_i + b_e, one score per element: nn::linear(x, W_e, b_e), "
                         "(B,T,H) -> (B,T,1)"});
  check.compare("a", yours.a, out.weights,
                {"F0.2", "a_i = exp(e_i) / sum_j exp(e_j): softmax over the elements of each "
                         "sequence, dim 1 of (B,T,1)"});
  check.compare("context", yours.context, out.context,
                {"F0.4", "context = sum_i a_i x_i: (B,T,1) * (B,T,H), summed over dim 1 -> (B,H)"});
  check.section("the gradients of L = sum(context * R), R seeded (B,H)");
  check.compare("dL/dx", yx.grad(), rx.grad(), {});
  check.compare("dL/dW_e", yw.grad(), layer.linear->weight.grad(), {});
  check.compare("dL/db_e", yb.grad(), layer.linear->bias.grad(), {});
  return check.verdict(
      "Your steps' values agree but a gradient does not: some step was computed outside the\n"
      "graph (detach(), a NoGradGuard, values copied by hand), so backward cannot go through it.");
}
