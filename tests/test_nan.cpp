// NaN that stays NaN: every op that compares (relu, max, softmax's max, the
// masks' maximum, hard attention's argmax) passes a NaN on as PyTorch does, so
// a diverging run shows NaN instead of looking healthy. And inputs that can
// only give NaN (non-finite bounds of a random draw, a non-finite eps) are an
// ag::Error naming the function called. Both modes run these tests (make test).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "layers/nn.hpp"
#include "tests/helpers.hpp"

using namespace ag;
using ag::testing::check_error;
using ag::testing::inf;

namespace {

const real qnan = std::numeric_limits<real>::quiet_NaN();

// NaN where `expected` is NaN, the value elsewhere.
void check_with_nan(const Tensor& t, const std::vector<double>& expected) {
  REQUIRE(t.numel() == static_cast<int64_t>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) {
    INFO("element " << i << ": got " << double(t.data()[i]) << ", expected " << expected[i]);
    if (std::isnan(expected[i]))
      CHECK(std::isnan(t.data()[i]));
    else
      CHECK((double(t.data()[i]) == expected[i] ||
             std::abs(double(t.data()[i]) - expected[i]) <= 1e-6));
  }
}

}  // namespace

TEST_CASE("ops/relu: NaN stays NaN, as in PyTorch") {
  const double n = std::numeric_limits<double>::quiet_NaN();
  check_with_nan(relu(from_vector({qnan, -1, 2, 0, -inf, inf})), {n, 0, 2, 0, 0, inf});
  nn::ReLU module;
  check_with_nan(module.forward(from_vector({qnan, -3})), {n, 0});
  // The gradient passes through a NaN input as it does in PyTorch (not 0).
  Tensor x = from_vector({qnan, -1, 2});
  x.requires_grad_();
  sum(relu(x)).backward();
  check_with_nan(x.grad(), {1, 0, 1});
}

TEST_CASE("ops/softmax: a NaN in a row makes that row NaN, other rows untouched") {
  const double n = std::numeric_limits<double>::quiet_NaN();
  const Tensor x = from_vector({1, qnan, 2, 0, 0, 0}, {2, 3});
  const double third = 1.0 / 3;
  check_with_nan(softmax(x, 1), {n, n, n, third, third, third});  // over the last dim
  check_with_nan(softmax(transpose(x, 0, 1), 0),                  // over a leading dim
                 {n, third, n, third, n, third});
  const double log_third = std::log(third);
  check_with_nan(log_softmax(x, 1), {n, n, n, log_third, log_third, log_third});
  nn::Softmax module(1);
  check_with_nan(module.forward(x), {n, n, n, third, third, third});
  // A row that is all -inf (fully masked) still gives zeros, not NaN.
  check_with_nan(softmax(from_vector({-inf, -inf}), 0), {0, 0});
}

TEST_CASE("attention/sdpa: a NaN score spreads over its query's row; a masked NaN is blocked") {
  const double n = std::numeric_limits<double>::quiet_NaN();
  Tensor q = from_vector({1, 0, 0, 1}, {2, 2}), k = from_vector({1, 0, qnan, 1}, {2, 2});
  const Tensor v = from_vector({1, 2, 3, 4}, {2, 2});
  nn::AttentionOutput out = nn::scaled_dot_product_attention(q, k, v);
  check_with_nan(out.weights, {n, n, n, n});  // key 1 has a NaN: every query sees it
  check_with_nan(out.context, {n, n, n, n});
  // Key 1 blocked: the NaN becomes -inf before the softmax, as masked_fill does in PyTorch.
  out = nn::scaled_dot_product_attention(q, k, v, from_vector({0, 1}));
  check_with_nan(out.weights, {1, 0, 1, 0});
  check_with_nan(out.context, {1, 2, 1, 2});
}

TEST_CASE("attention/masks [F4.8]: combine_masks keeps a NaN from either mask") {
  const double n = std::numeric_limits<double>::quiet_NaN();
  check_with_nan(nn::combine_masks(from_vector({0, qnan, 1, 0}), from_vector({qnan, 0, 0, 0})),
                 {n, n, 1, 0});
}

TEST_CASE("ops/max: a NaN is the maximum, and argmax points at it, as in PyTorch") {
  const double n = std::numeric_limits<double>::quiet_NaN();
  const Tensor x = from_vector({1, qnan, 3, 2, 5, 4}, {2, 3});
  check_with_nan(max(x), {n});
  check_with_nan(max(x, 1), {n, 5});
  check_with_nan(argmax(x, 1), {1, 1});
}

TEST_CASE("attention/scores [F1.7]: hard attention over a row with a NaN score gives NaN") {
  const double n = std::numeric_limits<double>::quiet_NaN();
  const Tensor scores = from_vector({1, qnan, 2, 1, 3, 2}, {2, 3});
  const Tensor values = from_vector({1, 2, 3, 4, 5, 6}, {2, 3, 1});
  nn::AttentionOutput out = nn::hard_attention(scores, values);
  check_with_nan(out.weights, {n, n, n, 0, 1, 0});
  check_with_nan(out.context, {n, 5});
}

TEST_CASE("errors: random draws and initialisers refuse bounds that can only give NaN") {
  const real max = std::numeric_limits<real>::max();
  check_error([&] { (void)uniform({3}, -inf, inf); }, {"uniform: low -inf and high inf", "finite"});
  check_error([&] { (void)uniform({3}, qnan, 1); }, {"uniform:", "nan", "finite"});
  check_error([&] { (void)uniform({3}, -max, max); }, {"uniform:", "high - low", "overflows"});
  Tensor t = zeros({2, 3});
  check_error([&] { nn::init::uniform_(t, -inf, inf); }, {"uniform_:", "finite"});
  check_error([&] { nn::init::uniform_(t, -max, max); }, {"uniform_:", "overflows"});
  check_error([&] { nn::init::normal_(t, qnan, 1); }, {"normal_:", "mean nan", "finite"});
  check_error([&] { nn::init::normal_(t, 0, inf); }, {"normal_:", "std inf"});
  check_error([&] { nn::init::xavier_uniform_(t, qnan); }, {"xavier_uniform_:", "gain nan"});
  check_error([&] { nn::init::kaiming_uniform_(t, inf); }, {"kaiming_uniform_:", "a inf"});
  check_error([&] { (void)linspace(0, inf, 3); }, {"linspace:", "finite"});
  check_error([&] { (void)linspace(qnan, 1, 3); }, {"linspace:", "finite"});
  check_error([&] { nn::LayerNorm(4, inf); }, {"LayerNorm:", "eps"});
  check_error(
      [&] {
        (void)nn::layer_norm(ones({2, 4}), Tensor(), Tensor(), inf);
      },
      {"layer_norm:", "eps"});
  // The values at the edge of what is allowed still work, and stay in range.
  const Tensor wide = uniform({100}, -max / 2, max / 2);
  for (real x : wide.to_vector()) CHECK((std::isfinite(x) && x >= -max / 2 && x < max / 2));
  CHECK(std::isnan(full({1}, qnan).item()));  // a NaN asked for on purpose is kept
}

TEST_CASE("ops/log_softmax: a slice that is all -inf gives -inf, the log of softmax's zeros") {
  const double minus_inf = -std::numeric_limits<double>::infinity();
  const Tensor x = from_vector({-inf, -inf, 0, 0}, {2, 2});
  check_with_nan(log_softmax(x, 1), {minus_inf, minus_inf, std::log(0.5), std::log(0.5)});
  check_with_nan(log_softmax(transpose(x, 0, 1), 0),
                 {minus_inf, std::log(0.5), minus_inf, std::log(0.5)});
  check_with_nan(softmax(x, 1), {0, 0, 0.5, 0.5});
}

TEST_CASE("ops/exp, tanh, sigmoid, layer_norm: the vectorized clamps keep NaN (both kernels)") {
  const double n = std::numeric_limits<double>::quiet_NaN();
  check_with_nan(exp(from_vector({qnan, 0})), {n, 1});
  check_with_nan(tanh(from_vector({qnan, 0})), {n, 0});
  check_with_nan(sigmoid(from_vector({qnan, 0})), {n, 0.5});
  check_with_nan(nn::layer_norm(from_vector({1, qnan, 2, 1, 2, 3}, {2, 3}), Tensor(), Tensor(), 0),
                 {n, n, n, -std::sqrt(1.5), 0, std::sqrt(1.5)});
}
