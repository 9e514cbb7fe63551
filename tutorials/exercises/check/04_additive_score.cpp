// The checker of exercise 04 (make exercise-04): the learner's additive_score
// against nn::AdditiveScore.
#include "tutorials/exercises/04_additive_score.hpp"
#include "tutorials/exercises/checker.hpp"

using namespace ag;
using namespace ag::exercise;

int main() {
  ReferenceModeGuard plain;  // the library's plain formula code: the lines you write
  Checker check("04", "the additive attention score [F1.5]",
                "tutorials/exercises/04_additive_score.cpp", "additive_score",
                "nn::AdditiveScore: project_keys and score "
                "(layers/attention/attention_scores.cpp)");
  // B differs from S, so a query added to the keys without its dim for S is an error.
  const int64_t B = 2, S = 5, Hq = 3, Hk = 4, A = 6;
  Generator gen(4);
  const Tensor s = randn({B, Hq}, gen), h = randn({B, S, Hk}, gen);
  const Tensor w_q = randn({A, Hq}, gen), w_k = randn({A, Hk}, gen), v = randn({1, A}, gen);
  const Tensor r = randn({B, S}, gen);  // L = sum(scores * R)
  check.inputs({{"s", s}, {"h", h}, {"W_q", w_q}, {"W_k", w_k}, {"v", v}});

  Tensor ys = leaf(s, "s"), yh = leaf(h, "h");
  Tensor yq = leaf(w_q, "weight"), yk = leaf(w_k, "weight"), yv = leaf(v, "weight");
  AdditiveScoreSteps yours;
  if (check.run([&] { additive_score(ys, yh, yq, yk, yv, yours); }) && yours.scores.defined() &&
      yours.scores.requires_grad() && yours.scores.shape() == r.shape())
    check.run([&] { sum(yours.scores * r).backward(); });

  nn::AdditiveScore score(Hq, Hk, A);
  {
    NoGradGuard no_grad;
    score.query_layer->weight.copy_(w_q);
    score.key_layer->weight.copy_(w_k);
    score.weight_layer->weight.copy_(v);
  }
  Tensor rs = leaf(s, "s"), rh = leaf(h, "h");
  const Tensor keys = score.project_keys(rh);
  const Tensor scores = score.score(rs, keys);
  sum(scores * r).backward();
  Tensor query, hidden;
  {
    NoGradGuard no_grad;  // the lines of AdditiveScore::score, for their values
    query = score.query_layer->forward(rs);
    hidden = tanh(unsqueeze(query, 1) + keys);
  }

  check.section("the score, step by step      yours vs the reference");
  check.compare("query", yours.query, query,
                {"F1.5", "W_q s_t: nn::linear(s, W_q) (no bias), (B,Hq) -> (B,A)"});
  check.compare("keys", yours.keys, keys,
                {"F1.5", "W_k h_j for every j: nn::linear(h, W_k), (B,S,Hk) -> (B,S,A)"});
  check.compare("hidden", yours.hidden, hidden,
                {"F1.5", "tanh(W_q s_t + W_k h_j): the query (B,A) made (B,1,A) with unsqueeze, "
                         "added to every key (B,S,A), then tanh of the sum"});
  check.compare("scores", yours.scores, scores,
                {"F1.5", "e_t(j) = v^T tanh(W_q s_t + W_k h_j): nn::linear(hidden, v) (B,S,1), "
                         "squeezed to (B,S)"});
  check.section("the gradients of L = sum(scores * R), R seeded (B,S)");
  check.compare("dL/ds", ys.grad(), rs.grad(), {});
  check.compare("dL/dh", yh.grad(), rh.grad(), {});
  check.compare("dL/dW_q", yq.grad(), score.query_layer->weight.grad(), {});
  check.compare("dL/dW_k", yk.grad(), score.key_layer->weight.grad(), {});
  check.compare("dL/dv", yv.grad(), score.weight_layer->weight.grad(), {});
  return check.verdict(
      "Your steps' values agree but a gradient does not: some step was computed outside the\n"
      "graph (detach(), a NoGradGuard, values copied by hand), so backward cannot go through it.");
}
