// Losses (layers/framework/loss.hpp): values and gradients worked out by hand, the three
// reductions, ignore_index, the class dim last on 3-D logits, the error
// messages, the fused cross_entropy against its composed form, and gradient
// checks (double flavor).
//
// Rows whose logits are logarithms make softmax exact fractions:
// softmax([log 1, log 2, log 5]) = [1, 2, 5] / 8, so losses are logs of
// fractions and gradients are fractions.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "layers/framework/loss.hpp"
#include "tests/helpers.hpp"

namespace {

using namespace ag;
using ag::nn::Reduction;
using ag::testing::check_error;
using ag::testing::check_shape;
using ag::testing::check_values;
using ag::testing::leaf;
using ag::testing::values_of;

const double ln2 = std::log(2.0), ln3 = std::log(3.0), ln5 = std::log(5.0);

// (2,2,3) logits, class dim last, each row with an exact softmax:
//   (0,0) [0, 0, 0]            softmax [1/3, 1/3, 1/3]
//   (0,1) [log1, log2, log5]   softmax [1/8, 2/8, 5/8]
//   (1,0) [0, log3, 0]         softmax [1/5, 3/5, 1/5]
//   (1,1) [log2, log2, 0]      softmax [2/5, 2/5, 1/5]
Tensor logits_223() {
  return leaf(from_vector(
      {0, 0, 0, 0, real(ln2), real(ln5), 0, real(ln3), 0, real(ln2), real(ln2), 0}, {2, 2, 3}));
}
// Targets [[1,2],[0,2]]: losses -log p[y] = [[log 3, log 8/5], [log 5, log 5]];
// d loss / d x = softmax - onehot per row.
const std::vector<double> ce_losses = {ln3, std::log(1.6), ln5, ln5};
const std::vector<double> ce_row_grads = {1.0 / 3,  -2.0 / 3, 1.0 / 3, 1.0 / 8, 2.0 / 8, -3.0 / 8,
                                          -4.0 / 5, 3.0 / 5,  1.0 / 5, 2.0 / 5, 2.0 / 5, -4.0 / 5};

std::vector<double> scaled(std::vector<double> v, const std::vector<double>& row_factor) {
  const size_t per_row = v.size() / row_factor.size();
  for (size_t i = 0; i < v.size(); ++i) v[i] *= row_factor[i / per_row];
  return v;
}

}  // namespace

// ============================================================ mse_loss

TEST_CASE("loss/mse_loss [F4.10]: MSE = 1/n sum (y - y_hat)^2, Mean, Sum and None") {
  // y_hat = [1,2,3,4], y = [0,2,5,3]: y_hat - y = [1,0,-2,1], squares [1,0,4,1]:
  // Sum 6, Mean 6/4 = 1.5. d Mean / d y_hat = 2 (y_hat - y) / 4 = [0.5,0,-1,0.5].
  Tensor y_hat = leaf(tensor({{1, 2}, {3, 4}}));
  Tensor y = leaf(tensor({{0, 2}, {5, 3}}));
  Tensor mean = nn::mse_loss(y_hat, y);
  check_shape(mean, {});
  check_values(mean, {1.5});
  CHECK(std::string(mean.grad_fn()->name) == "MseLossBackward");
  mean.backward();
  check_values(y_hat.grad(), {0.5, 0, -1, 0.5});
  check_values(y.grad(), {-0.5, 0, 1, -0.5});  // d/dy = -d/dy_hat

  check_values(nn::mse_loss(y_hat, y, Reduction::Sum), {6});
  Tensor none = nn::mse_loss(y_hat, y, Reduction::None);
  check_shape(none, {2, 2});
  check_values(none, {1, 0, 4, 1});
  // None stays differentiable: upstream [[1,2],[3,4]] times 2 (y_hat - y)
  y_hat.set_grad(Tensor());
  none.backward(tensor({{1, 2}, {3, 4}}));
  check_values(y_hat.grad(), {2, 0, -12, 8});
}

TEST_CASE("loss/mse_loss: shapes must match, a mean needs elements") {
  check_error(
      [] {
        nn::mse_loss(zeros({2, 3}), zeros({3, 2}));
      },
      {"mse_loss:", "(2,3)", "(3,2)", "same shape"});
  check_error([] { nn::mse_loss(zeros({3}), zeros({1})); }, {"mse_loss:", "no broadcasting"});
  check_error(
      [] {
        nn::mse_loss(zeros({0, 2}), zeros({0, 2}));
      },
      {"mse_loss:", "(0,2)", "no elements"});
  check_values(nn::mse_loss(zeros({0, 2}), zeros({0, 2}), Reduction::Sum), {0});
}

// ============================================================ cross_entropy

TEST_CASE("loss/cross_entropy: one row by hand, [[1,2,3]] with target 2") {
  // log(e^1 + e^2 + e^3) - 3 = log(e^-2 + e^-1 + 1) = 0.40760596444438013
  // softmax = [e, e^2, e^3] / (e + e^2 + e^3) = [0.0900.., 0.2447.., 0.6652..]
  // gradient = softmax - onehot(2)
  Tensor x = leaf(tensor({{1, 2, 3}}));
  Tensor loss = nn::cross_entropy(x, tensor({2}));
  check_shape(loss, {});
  check_values(loss, {0.40760596444438013});
  // one fused node in fast mode; log_softmax then nll_loss in reference mode
  CHECK(std::string(loss.grad_fn()->name) ==
        (reference_mode() ? "NllLossBackward" : "CrossEntropyBackward"));
  loss.backward();
  check_values(x.grad(), {0.09003057317038046, 0.24472847105479767, 0.6652409557748219 - 1});
  // 1-D logits (C,) with a 0-dim target: one sample
  check_values(nn::cross_entropy(tensor({1, 2, 3}), scalar(2)), {0.40760596444438013});
}

TEST_CASE("loss/cross_entropy: a row of -inf logits has loss inf in both modes") {
  // Every class blocked: -log softmax = -log 0 = inf (nll_loss(log_softmax)
  // gives it in reference mode, the fused row in fast mode); a finite row beside
  // it keeps its own loss.
  const real inf = std::numeric_limits<real>::infinity();
  const Tensor x = tensor({{-inf, -inf, -inf}, {1, 2, 3}});
  for (bool plain : {false, true}) {
    ReferenceModeGuard mode(plain);
    const Tensor losses = nn::cross_entropy(x, tensor({1, 2}), -100, Reduction::None);
    INFO((plain ? "reference" : "fast") << " mode");
    CHECK(losses.data()[0] == inf);
    CHECK(std::abs(double(losses.data()[1]) - 0.40760596444438013) < 1e-5);
  }
}

TEST_CASE("loss/cross_entropy: 3-D logits (B,T,C), Mean, Sum and None") {
  Tensor x = logits_223();
  Tensor y = tensor({{1, 2}, {0, 2}});
  SUBCASE("Mean: (log 3 + log 8/5 + 2 log 5) / 4 = log(120) / 4, gradient / 4") {
    Tensor loss = nn::cross_entropy(x, y);
    check_values(loss, {std::log(120.0) / 4});
    loss.backward();
    check_shape(x.grad(), {2, 2, 3});
    check_values(x.grad(), scaled(ce_row_grads, {0.25, 0.25, 0.25, 0.25}));
  }
  SUBCASE("Sum: log 120, gradient softmax - onehot") {
    Tensor loss = nn::cross_entropy(x, y, -100, Reduction::Sum);
    check_values(loss, {std::log(120.0)});
    loss.backward();
    check_values(x.grad(), ce_row_grads);
  }
  SUBCASE("None: the (B,T) losses; upstream g scales each row") {
    Tensor losses = nn::cross_entropy(x, y, -100, Reduction::None);
    check_shape(losses, {2, 2});
    check_values(losses, ce_losses);
    losses.backward(tensor({{1, 2}, {3, 4}}));
    check_values(x.grad(), scaled(ce_row_grads, {1, 2, 3, 4}));
  }
  SUBCASE("the same rows as (4,3) logits, with tensor and vector targets") {
    Tensor flat = reshape(x.detach(), {4, 3});
    check_values(nn::cross_entropy(flat, tensor({1, 2, 0, 2}), -100, Reduction::None), ce_losses);
    check_values(nn::cross_entropy(flat, std::vector<int64_t>{1, 2, 0, 2}, -100, Reduction::None),
                 ce_losses);
    check_values(nn::cross_entropy(flat, {1, 2, 0, 2}, -100, Reduction::None), ce_losses);
    // a braced list of one index, even {0}, is a list of indices, not a Tensor
    check_values(nn::cross_entropy(tensor({{0, real(ln3), 0}}), {0}), {ln5});
  }
}

TEST_CASE("loss/cross_entropy: ignore_index rows add nothing, Mean divides by the others") {
  Tensor x = logits_223();
  SUBCASE("default -100 at (0,1): (log 3 + 2 log 5) / 3 = log(75) / 3") {
    Tensor loss = nn::cross_entropy(x, tensor({{1, -100}, {0, 2}}));
    check_values(loss, {std::log(75.0) / 3});
    loss.backward();
    check_values(x.grad(), scaled(ce_row_grads, {1.0 / 3, 0, 1.0 / 3, 1.0 / 3}));
  }
  SUBCASE("ignore_index 0 (a padding class) ignores the target 0 at (1,0)") {
    Tensor y = tensor({{1, 2}, {0, 2}});
    Tensor none = nn::cross_entropy(x, y, /*ignore_index=*/0, Reduction::None);
    check_values(none, {ln3, std::log(1.6), 0, ln5});
    Tensor sum = nn::cross_entropy(x, y, 0, Reduction::Sum);  // log(3 * 1.6 * 5) = log 24
    check_values(sum, {std::log(24.0)});
    sum.backward();
    check_values(x.grad(), scaled(ce_row_grads, {1, 1, 0, 1}));
  }
  SUBCASE("vector targets") {
    Tensor flat = leaf(reshape(x.detach(), {4, 3}));
    Tensor loss = nn::cross_entropy(flat, std::vector<int64_t>{1, -100, 0, 2});
    check_values(loss, {std::log(75.0) / 3});
  }
}

TEST_CASE("loss/cross_entropy: every target ignored gives 0 and a zero gradient") {
  // PyTorch gives NaN (0/0); attograd documents 0 so a batch of pure padding
  // does not poison training.
  Tensor x = logits_223();
  Tensor y = full({2, 2}, -100);
  Tensor loss = nn::cross_entropy(x, y);
  check_values(loss, {0});
  loss.backward();
  check_values(x.grad(), std::vector<double>(12, 0));
  check_values(nn::cross_entropy(x, y, -100, Reduction::Sum), {0});
  check_values(nn::cross_entropy(x, y, -100, Reduction::None), {0, 0, 0, 0});
  check_values(nn::nll_loss(x, y), {0});
}

TEST_CASE("loss/cross_entropy: logits of +-1000 neither overflow nor give NaN") {
  // The max (1000) is subtracted first: log(1 + e^-1000 + e^-2000) = 0 exactly
  // in floating point, so loss(target 0) = 0 and loss(target 1) = 1000 - 0.
  Tensor x = leaf(tensor({{1000, 0, -1000}, {1000, 0, -1000}}));
  Tensor losses = nn::cross_entropy(x, tensor({0, 1}), -100, Reduction::None);
  check_values(losses, {0, 1000});
  sum(losses).backward();
  check_values(x.grad(), {0, 0, 0, 1, -1, 0});  // softmax [1,0,0] minus the onehots
}

TEST_CASE("loss/cross_entropy equals nll_loss(log_softmax(x)), values and gradients") {
  Generator gen(7);
  Tensor base = randn({3, 4, 5}, gen);
  Tensor y = randint(0, 5, {3, 4}, gen);
  y.data()[5] = -100;
  for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    CAPTURE(static_cast<int>(r));
    Tensor x1 = leaf(base.clone()), x2 = leaf(base.clone());
    Tensor fused = nn::cross_entropy(x1, y, -100, r);
    Tensor composed = nn::nll_loss(log_softmax(x2, -1), y, -100, r);
    check_shape(fused, composed.shape());
    check_values(fused, values_of(composed));
    sum(fused * fused).backward();  // a non-uniform upstream gradient for None
    sum(composed * composed).backward();
    check_values(x1.grad(), values_of(x2.grad()));
  }
}

// ============================================================ nll_loss

TEST_CASE("loss/nll_loss: -log_probs[y], Mean, Sum, None and ignore_index") {
  // log_probs [[-1,-2,-3],[-0.5,-1.5,-2.5]], targets [0,2]: losses [1, 2.5],
  // Mean 1.75; gradient -1/2 at each target entry, 0 elsewhere.
  Tensor lp = leaf(tensor({{-1, -2, -3}, {-0.5, -1.5, -2.5}}));
  Tensor loss = nn::nll_loss(lp, tensor({0, 2}));
  check_values(loss, {1.75});
  CHECK(std::string(loss.grad_fn()->name) == "NllLossBackward");
  loss.backward();
  check_values(lp.grad(), {-0.5, 0, 0, 0, 0, -0.5});
  check_values(nn::nll_loss(lp, tensor({0, 2}), -100, Reduction::Sum), {3.5});
  check_values(nn::nll_loss(lp, tensor({0, 2}), -100, Reduction::None), {1, 2.5});
  // target 1 ignored: Mean over the one counted row = 2.5
  check_values(nn::nll_loss(lp, tensor({1, 2}), /*ignore_index=*/1), {2.5});
}

// ============================================================ binary_cross_entropy_with_logits

TEST_CASE("loss/binary_cross_entropy_with_logits: hand values, stable for large |x|") {
  // max(x,0) - x y + log(1 + e^-|x|), gradient sigmoid(x) - y:
  //   x = 0,     y = 1:   log 2;                      0.5 - 1 = -0.5
  //   x = log 3, y = 1:   -log sigmoid = log(4/3);    3/4 - 1 = -1/4
  //   x = -log 3, y = 0:  -log(1 - 1/4) = log(4/3);   1/4
  //   x = 2,     y = 0.5: 2 - 1 + log(1 + e^-2);      sigmoid(2) - 0.5
  const double l43 = std::log(4.0 / 3), s2 = 1 / (1 + std::exp(-2.0));
  Tensor x = leaf(tensor({0, real(ln3), real(-ln3), 2}));
  Tensor y = leaf(tensor({1, 1, 0, 0.5}));
  Tensor none = nn::binary_cross_entropy_with_logits(x, y, Reduction::None);
  check_values(none, {ln2, l43, l43, 1 + std::log1p(std::exp(-2.0))});
  Tensor mean = nn::binary_cross_entropy_with_logits(x, y);
  check_values(mean, {(ln2 + 2 * l43 + 1 + std::log1p(std::exp(-2.0))) / 4});
  CHECK(std::string(mean.grad_fn()->name) == "BinaryCrossEntropyWithLogitsBackward");
  mean.backward();
  check_values(x.grad(), {-0.5 / 4, -0.25 / 4, 0.25 / 4, (s2 - 0.5) / 4});
  check_values(y.grad(), {0, -ln3 / 4, ln3 / 4, -2.0 / 4});  // d/dy = -x / n
  // |x| = 100: e^100 would overflow float; the stable form gives 0 and 100.
  Tensor big = leaf(tensor({100, -100, 100}));
  Tensor losses = nn::binary_cross_entropy_with_logits(big, tensor({1, 0, 0}), Reduction::None);
  check_values(losses, {0, 0, 100});
  sum(losses).backward();
  check_values(big.grad(), {0, 0, 1});
  check_values(nn::binary_cross_entropy_with_logits(big, tensor({1, 0, 0}), Reduction::Sum), {100});
}

// ============================================================ errors

TEST_CASE("loss/errors: targets out of range, not whole numbers, shapes and dims") {
  Tensor x = zeros({2, 3});
  check_error(
      [&] {
        nn::cross_entropy(x, tensor({0, 3}));
      },
      {"cross_entropy:", "target 3", "position [1]", "out of range for 3 classes",
       "valid: 0..2, or ignore_index -100"});
  check_error(
      [&] {
        nn::cross_entropy(x, tensor({-1, 0}));
      },
      {"cross_entropy:", "target -1", "position [0]", "out of range"});
  check_error(
      [&] {
        nn::cross_entropy(zeros({2, 2, 4}), tensor({{0, 1}, {1.5, 2}}));
      },
      {"cross_entropy:", "target 1.5", "position [1,0]", "not a class index", "0..3"});
  check_error(
      [&] {
        nn::cross_entropy(x, tensor({0, std::nan("")}));
      },
      {"cross_entropy:", "nan", "position [1]"});
  check_error(
      [&] {
        nn::cross_entropy(x, tensor({0, 5}), /*ignore_index=*/-1);
      },
      {"target 5", "ignore_index -1"});
  check_error([&] { nn::cross_entropy(x, tensor({0, 1e30})); }, {"out of range"});
  check_error(
      [&] {
        nn::nll_loss(x, tensor({3, 0}));
      },
      {"nll_loss:", "target 3", "position [0]", "valid: 0..2"});
  // shapes: targets must be the logits' shape without the class dim
  check_error(
      [] {
        nn::cross_entropy(zeros({2, 3, 4}), zeros({2, 4}));
      },
      {"cross_entropy:", "targets (2,4)", "logits (2,3,4)", "expected targets of shape (2,3)",
       "class dim last"});
  check_error([] { nn::cross_entropy(scalar(1), scalar(0)); }, {"cross_entropy:", "0-dim"});
  check_error(
      [] {
        nn::nll_loss(zeros({4, 3}), zeros({3}));
      },
      {"nll_loss:", "log_probs (4,3)", "(4)"});
  // vector targets: 2-D logits, one per row
  check_error(
      [] {
        nn::cross_entropy(zeros({2, 3, 4}), std::vector<int64_t>{0, 1});
      },
      {"cross_entropy:", "2-D logits (N,C)", "(2,3,4)"});
  check_error(
      [] {
        nn::cross_entropy(zeros({2, 3}), std::vector<int64_t>{0, 1, 2});
      },
      {"cross_entropy:", "3 targets", "(2,3)", "one per row, 2"});
  check_error(
      [] {
        nn::cross_entropy(zeros({2, 3}), std::vector<int64_t>{0, 7});
      },
      {"target 7", "position [1]", "0..2"});
  check_error(
      [] {
        nn::binary_cross_entropy_with_logits(zeros({2}), zeros({2, 1}));
      },
      {"binary_cross_entropy_with_logits:", "(2)", "(2,1)", "same shape"});
  check_error([] { nn::mse_loss(Tensor(), zeros({2})); }, {"mse_loss:", "undefined"});
}

TEST_CASE("loss/recording: targets get no gradient, NoGradGuard records nothing") {
  Tensor x = logits_223();
  Tensor y = tensor({{1, 2}, {0, 2}});
  {
    NoGradGuard no_grad;
    Tensor loss = nn::cross_entropy(x, y);
    CHECK_FALSE(loss.requires_grad());
    CHECK(loss.grad_fn() == nullptr);
  }
  Tensor c = nn::cross_entropy(x.detach(), y);  // nothing requires grad
  CHECK_FALSE(c.requires_grad());
  // mse: only the target requires grad
  Tensor target = leaf(tensor({1, 2}));
  nn::mse_loss(tensor({0, 0}), target).backward();  // d/dy = -2 (0 - y) / 2 = y
  check_values(target.grad(), {1, 2});
}

// ============================================================ gradient checks

#ifdef AG_USE_DOUBLE

TEST_CASE("loss/grad: gradcheck of every loss and reduction") {
  using Inputs = std::vector<Tensor>;
  Generator gen(11);
  Tensor logits = leaf(randn({2, 3, 4}, gen));
  Tensor y = tensor({{0, 3, -100}, {2, 1, 1}});
  for (Reduction r : {Reduction::Mean, Reduction::Sum, Reduction::None}) {
    CAPTURE(static_cast<int>(r));
    ag::testing::check_gradients(
        [=](const Inputs& in) { return nn::cross_entropy(in[0], y, -100, r); }, {logits});
    ag::testing::check_gradients([=](const Inputs& in) { return nn::nll_loss(in[0], y, -100, r); },
                                 {logits});
    ag::testing::check_gradients([=](const Inputs& in) { return nn::mse_loss(in[0], in[1], r); },
                                 {leaf(randn({2, 3}, gen)), leaf(randn({2, 3}, gen))});
    ag::testing::check_gradients(
        [=](const Inputs& in) { return nn::binary_cross_entropy_with_logits(in[0], in[1], r); },
        {leaf(randn({3, 2}, gen) * real(3)), leaf(rand({3, 2}, gen))});
  }
  // 2-D logits with vector targets, ignore_index inside the class range
  ag::testing::check_gradients(
      [](const Inputs& in) {
        return nn::cross_entropy(in[0], std::vector<int64_t>{1, 0, 2}, /*ignore_index=*/0);
      },
      {leaf(randn({3, 3}, gen))});
}

#endif  // AG_USE_DOUBLE
