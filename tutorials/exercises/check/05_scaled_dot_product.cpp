// The checker of exercise 05 (make exercise-05): the learner's
// scaled_dot_product_attention against nn::scaled_dot_product_attention.
#include "tutorials/exercises/05_scaled_dot_product.hpp"
#include "tutorials/exercises/checker.hpp"

#include <cmath>
#include <limits>

using namespace ag;
using namespace ag::exercise;

int main() {
  ReferenceModeGuard plain;  // the library's plain formula code: the lines you write
  Checker check("05", "scaled dot-product attention with a mask [F2.3] [F4.8] [F2.4] [F2.5]",
                "tutorials/exercises/05_scaled_dot_product.cpp", "scaled_dot_product_attention",
                "nn::scaled_dot_product_attention (layers/attention/scaled_dot_product.cpp)");
  const int64_t B = 2, Tq = 3, Tk = 4, d_k = 3, d_v = 5;
  Generator gen(5);
  const Tensor q = randn({B, Tq, d_k}, gen), k = randn({B, Tk, d_k}, gen);
  const Tensor v = randn({B, Tk, d_v}, gen);
  const Tensor mask = nn::padding_mask(std::vector<int64_t>{4, 2}, Tk);  // (B,1,Tk)
  const Tensor r = randn({B, Tq, d_v}, gen);                               // L = sum(output * R)
  check.inputs({{"Q", q}, {"K", k}, {"V", v}, {"mask (padding: lengths 4 and 2)", mask}});

  Tensor yq = leaf(q, "q"), yk = leaf(k, "k"), yv = leaf(v, "v");
  AttentionSteps yours;
  if (check.run([&] { scaled_dot_product_attention(yq, yk, yv, mask, yours); }) &&
      yours.output.defined() && yours.output.requires_grad() && yours.output.shape() == r.shape())
    check.run([&] { sum(yours.output * r).backward(); });

  Tensor rq = leaf(q, "q"), rk = leaf(k, "k"), rv = leaf(v, "v");
  const nn::AttentionOutput out = nn::scaled_dot_product_attention(rq, rk, rv, mask);
  sum(out.context * r).backward();
  Tensor scores, masked;
  {
    NoGradGuard no_grad;  // the function's first lines, for their values
    scores = matmul(rq, transpose(rk, -2, -1)) / std::sqrt(real(d_k));
    masked = masked_fill(scores, mask, -std::numeric_limits<real>::infinity());
  }

  check.section("the attention, step by step      yours vs the reference");
  check.compare("scores", yours.scores, scores,
                {"F2.3", "A_ij = q_i . k_j / sqrt(d_k): matmul(Q, transpose(K, -2, -1)) / "
                         "sqrt(d_k), (B,Tq,d_k) x (B,d_k,Tk) -> (B,Tq,Tk)"});
  check.compare("masked", yours.masked, masked,
                {"F4.8", "the scores with -inf where the mask is 1: masked_fill(scores, mask, "
                         "-inf); the mask (B,1,Tk) broadcasts over the queries"});
  check.compare("weights", yours.weights, out.weights,
                {"F2.4", "H_i = softmax(A_i) over the keys: softmax(masked, -1)"});
  check.compare("output", yours.output, out.context,
                {"F2.5", "O_i = sum_j H_ij V_j: matmul(weights, V), (B,Tq,Tk) x (B,Tk,d_v)"});
  check.section("the gradients of L = sum(output * R), R seeded (B,Tq,d_v)");
  check.compare("dL/dQ", yq.grad(), rq.grad(), {});
  check.compare("dL/dK", yk.grad(), rk.grad(), {});
  check.compare("dL/dV", yv.grad(), rv.grad(), {});
  return check.verdict(
      "Your steps' values agree but a gradient does not: some step was computed outside the\n"
      "graph (detach(), a NoGradGuard, values copied by hand), so backward cannot go through it.");
}
