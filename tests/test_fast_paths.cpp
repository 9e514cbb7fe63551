// Tests of the engine's fast paths against the plain code they replace: the
// float exp and tanh of core/fast_math.hpp against std::exp and std::tanh
// (computed in double), and, further down, each fused or contiguous kernel
// against the plain loop or the composed ops beside it.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <vector>

#include "autograd/attograd.hpp"
#include "core/fast_math.hpp"
#include "core/kernels.hpp"
#include "layers/nn.hpp"
#include "tests/helpers.hpp"

namespace {

using namespace ag;
using ag::testing::check_values;

// |got - want| in units of the float spacing at want (ulps).
double ulps(float got, double want) {
  const double spacing = std::max(std::abs(want), double(std::numeric_limits<float>::min())) *
                         double(std::numeric_limits<float>::epsilon());
  return std::abs(double(got) - want) / spacing;
}

TEST_CASE("fast/exp_float: within 2 ulp of exp on [-87, 88], 0 below, inf above, NaN kept") {
  double worst = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.00731f)
    worst = std::max(worst, ulps(fast::exp_float(x), std::exp(double(x))));
  for (float x = -1.0f; x <= 1.0f; x += 1.7e-5f)
    worst = std::max(worst, ulps(fast::exp_float(x), std::exp(double(x))));
  INFO("worst error " << worst << " ulp");
  CHECK(worst <= 2.0);
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(fast::exp_float(0.0f) == 1.0f);
  CHECK(fast::exp_float(-inf) == 0.0f);  // a masked softmax weight is exactly 0
  CHECK(fast::exp_float(-200.0f) == 0.0f);
  CHECK(fast::exp_float(inf) == inf);
  CHECK(fast::exp_float(200.0f) == inf);
  CHECK(std::isnan(fast::exp_float(std::numeric_limits<float>::quiet_NaN())));
}

TEST_CASE("fast/tanh_float: within 3 ulp of tanh everywhere, odd, +-1 at the ends, NaN kept") {
  double worst = 0;
  for (float x = -12.0f; x <= 12.0f; x += 0.000613f)
    worst = std::max(worst, ulps(fast::tanh_float(x), std::tanh(double(x))));
  for (float x = -1e-3f; x <= 1e-3f; x += 3.1e-8f)
    worst = std::max(worst, ulps(fast::tanh_float(x), std::tanh(double(x))));
  INFO("worst error " << worst << " ulp");
  CHECK(worst <= 3.0);
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(fast::tanh_float(0.0f) == 0.0f);
  CHECK(std::signbit(fast::tanh_float(-0.0f)));
  CHECK(fast::tanh_float(1e-30f) == 1e-30f);
  CHECK(fast::tanh_float(inf) == 1.0f);
  CHECK(fast::tanh_float(-inf) == -1.0f);
  CHECK(fast::tanh_float(0.3f) == -fast::tanh_float(-0.3f));
  CHECK(std::isnan(fast::tanh_float(std::numeric_limits<float>::quiet_NaN())));
}

TEST_CASE("fast/tanh op: the engine's tanh and exp agree with std:: on a tensor") {
  Tensor x = from_vector({-3, -0.7, -0.2, 0, 0.1, 0.5, 0.9, 4}, {2, 4});
  std::vector<double> want_tanh, want_exp;
  for (real v : x.to_vector()) {
    want_tanh.push_back(std::tanh(double(v)));
    want_exp.push_back(std::exp(double(v)));
  }
  check_values(tanh(x), want_tanh);
  check_values(exp(x), want_exp);
}

}  // namespace

namespace {

using namespace ag;

// Every element of a within tolerance of b (same shape); NaN matches NaN, inf the same inf.
void check_close(const Tensor& a, const Tensor& b, double tolerance) {
  REQUIRE(a.shape() == b.shape());
  for (int64_t i = 0; i < a.numel(); ++i) {
    INFO("element " << i << ": " << double(a.data()[i]) << " vs " << double(b.data()[i]));
    const double x = a.data()[i], y = b.data()[i];
    const bool same_special = (std::isnan(x) && std::isnan(y)) || (std::isinf(x) && x == y);
    CHECK((same_special || std::abs(x - y) <= tolerance));
  }
}

TEST_CASE("fast/softmax: the last-dim fast path equals the plain loops, masked rows included") {
  Generator gen(7);
  const real inf = std::numeric_limits<real>::infinity();
  for (int64_t size : {1, 5, 8, 32, 37}) {
    Tensor x = randn({3, 4, size}, gen) * real(4);
    x.data()[2] = -inf;                                            // one masked key
    for (int64_t k = 0; k < size; ++k) x.data()[size + k] = -inf;  // a fully masked row
    const double tolerance = ag::testing::is_double ? 1e-14 : 1e-6;
    check_close(kernel::softmax(x, 2), kernel::softmax_reference(x, 2), tolerance);
    check_close(kernel::log_softmax(x, 2), kernel::log_softmax_reference(x, 2), 4 * tolerance);
    CHECK(kernel::softmax(x, 2).data()[2] == 0);  // a masked weight is exactly 0
  }
}

TEST_CASE("fast/softmax backward: the last-dim path equals the general one through a transpose") {
  Generator gen(8);
  Tensor x = randn({2, 3, 6}, gen), g = randn({2, 3, 6}, gen);
  Tensor y = kernel::softmax(x, 2);
  // The same numbers with the softmax dim in the middle take the general loop.
  Tensor yt = kernel::permute(y, {0, 2, 1}), gt = kernel::permute(g, {0, 2, 1});
  Tensor general = kernel::permute(kernel::softmax_backward(gt, yt, 1), {0, 2, 1});
  const double tolerance = ag::testing::is_double ? 1e-14 : 1e-6;
  check_close(kernel::softmax_backward(g, y, 2), general, tolerance);
  // and the closed form y (g - sum(g y)) written out for one row
  double dot = 0;
  for (int k = 0; k < 6; ++k) dot += double(g.data()[k]) * double(y.data()[k]);
  for (int k = 0; k < 6; ++k)
    CHECK(std::abs(double(kernel::softmax_backward(g, y, 2).data()[k]) -
                   double(y.data()[k]) * (double(g.data()[k]) - dot)) <= tolerance);
}

}  // namespace

namespace {

using namespace ag;

TEST_CASE("fast/mul_sum_to: equals sum_to(g * b) for every broadcast pattern") {
  Generator gen(9);
  struct Case {
    Shape g, b, target;
  };
  const Case cases[] = {
      {{2, 5, 7}, {2, 5, 7}, {2, 5, 1}},  // row . row into one element (alpha * h)
      {{2, 5, 7}, {2, 5, 1}, {2, 5, 7}},  // the same shape as g: a plain product
      {{2, 5, 7}, {2, 5, 1}, {2, 1, 7}},  // b repeated along the row, summed over dim 1
      {{2, 5, 7}, {7}, {5, 7}},           // a bias-like b, leading dim summed
      {{2, 5, 7}, {2, 5, 7}, {1}},        // everything into one element
      {{3, 4}, {3, 4}, {4, 1}},           // a strided target row (stride 0 then 1)
      {{4, 3}, {1, 3}, {4, 3}},
  };
  for (const Case& c : cases) {
    CAPTURE(shape_str(c.g));
    CAPTURE(shape_str(c.target));
    Tensor g = randn(c.g, gen), b = randn(c.b, gen);
    Tensor fused = kernel::mul_sum_to(g, b, c.target);
    Tensor plain =
        kernel::sum_to(kernel::zip(g, b, "mul", [](real x, real y) { return x * y; }), c.target);
    REQUIRE(fused.shape() == plain.shape());
    for (int64_t i = 0; i < fused.numel(); ++i)
      CHECK(std::abs(double(fused.data()[i]) - double(plain.data()[i])) <=
            (ag::testing::is_double ? 1e-12 : 1e-5));
  }
}

TEST_CASE("fast/buffer cache: reused buffers are aligned and never shared between live tensors") {
  std::vector<std::pair<Tensor, real>> live;  // each tensor and the value it was filled with
  for (int round = 0; round < 3; ++round) {
    for (int64_t n : {1, 3, 255, 256, 257, 1000, 4096, 100000}) {
      const real value = real(round * 1000 + n);
      Tensor t = full({n}, value);
      if (n >= 256) CHECK(reinterpret_cast<uintptr_t>(t.data()) % 64 == 0);  // >= 1 KiB
      live.emplace_back(t, value);
    }
    // Every live tensor still holds its own value: no buffer was handed out twice.
    for (const auto& [t, value] : live)
      for (int64_t i = 0; i < t.numel(); i += 97) CHECK(t.data()[i] == value);
    if (round == 1) live.clear();  // freed buffers go to the cache, round 2 reuses them
  }
}

}  // namespace

namespace {

using namespace ag;

TEST_CASE("fast/narrow backward: slabs added in place give the same gradient as zero padding") {
  // x (4,3); three narrows along dim 0, overlapping, each used once with its own weight:
  //   L = 2 sum(x[0:2]) + 3 sum(x[1:3]) + 5 sum(x[3:4])
  // dL/dx = rows 2, 5, 3, 5 (the first narrow's gradient is zero-padded, the
  // later ones are added into its slab in place).
  Tensor x = from_vector({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {4, 3}).requires_grad_();
  auto loss = [&] {
    return sum(narrow(x, 0, 0, 2)) * real(2) + sum(narrow(x, 0, 1, 2)) * real(3) +
           sum(narrow(x, 0, 3, 1)) * real(5);
  };
  loss().backward();
  ag::testing::check_values(x.grad(), {2, 2, 2, 5, 5, 5, 3, 3, 3, 5, 5, 5});
  // A second backward adds to .grad (in place: nobody else holds it) ...
  loss().backward();
  ag::testing::check_values(x.grad(), {4, 4, 4, 10, 10, 10, 6, 6, 6, 10, 10, 10});
  // ... but a .grad the user holds is left as it was.
  Tensor held = x.grad();
  loss().backward();
  ag::testing::check_values(held, {4, 4, 4, 10, 10, 10, 6, 6, 6, 10, 10, 10});
  ag::testing::check_values(x.grad(), {6, 6, 6, 15, 15, 15, 9, 9, 9, 15, 15, 15});
  // Through a non-leaf, along dim 1.
  Tensor w = from_vector({1, 2, 3, 4}, {1, 4}).requires_grad_();
  Tensor h = w * real(10);
  (sum(narrow(h, 1, 0, 3)) + sum(narrow(h, 1, 2, 2)) * real(2)).backward();
  ag::testing::check_values(w.grad(), {10, 10, 30, 20});
}

}  // namespace

namespace {

using namespace ag;

// Forward and the gradients of sum(w * f(inputs)) for random weights w, so that
// every output element carries a different gradient.
std::vector<Tensor> values_and_grads(const std::function<Tensor(const std::vector<Tensor>&)>& f,
                                     const std::vector<Tensor>& inputs, uint64_t seed) {
  for (const Tensor& x : inputs) x.impl()->grad.reset();
  Tensor out = f(inputs);
  Generator gen(seed);
  Tensor weights = randn(out.shape(), gen);
  sum(out * weights).backward();
  std::vector<Tensor> result{out.detach()};
  for (const Tensor& x : inputs) result.push_back(x.grad());
  return result;
}

TEST_CASE("fast/additive_score_fused: score and gradients equal v^T tanh(q + k) op by op") {
  const int64_t B = 3, S = 5, A = 19;  // A not a multiple of 8: the lanes' tail runs too
  Tensor query = ag::testing::leaf({B, A}, 11);
  Tensor keys = ag::testing::leaf({B, S, A}, 12);
  Tensor v = ag::testing::leaf({1, A}, 13);
  auto fused = [](const std::vector<Tensor>& x) {
    return nn::additive_score_fused(x[0], x[1], x[2]);
  };
  auto composed = [](const std::vector<Tensor>& x) {
    return nn::linear(tanh(unsqueeze(x[0], 1) + x[1]), x[2], Tensor());
  };
  const std::vector<Tensor> got = values_and_grads(fused, {query, keys, v}, 7);
  const std::vector<Tensor> want = values_and_grads(composed, {query, keys, v}, 7);
  CHECK(got[0].shape() == Shape({B, S, 1}));
  const double tolerance = ag::testing::is_double ? 1e-12 : 1e-4;
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("output/gradient " << i);
    CHECK(ag::testing::max_abs_diff(got[i], want[i]) <= tolerance);
  }
  if constexpr (ag::testing::is_double) ag::testing::check_gradients(fused, {query, keys, v});
  ag::testing::check_error([&] { nn::additive_score_fused(keys, keys, v); },
                           {"additive_score_fused", "(B,A)", "(B,S,A)"});
  ag::testing::check_error([&] { nn::additive_score_fused(query, keys, query); },
                           {"additive_score_fused", "v_weight", "(1, A = 19)"});
}

TEST_CASE("fast/attention_context_fused: equals sum(alpha * values, 1) op by op") {
  const int64_t B = 3, S = 4, H = 21;
  Tensor alpha = ag::testing::leaf({B, S, 1}, 41);
  Tensor values = ag::testing::leaf({B, S, H}, 42);
  auto fused = [](const std::vector<Tensor>& x) { return nn::attention_context_fused(x[0], x[1]); };
  auto composed = [](const std::vector<Tensor>& x) { return sum(x[0] * x[1], 1); };
  const std::vector<Tensor> got = values_and_grads(fused, {alpha, values}, 3);
  const std::vector<Tensor> want = values_and_grads(composed, {alpha, values}, 3);
  CHECK(got[0].shape() == Shape({B, H}));
  const double tolerance = ag::testing::is_double ? 1e-12 : 1e-5;
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("output/gradient " << i);
    CHECK(ag::testing::max_abs_diff(got[i], want[i]) <= tolerance);
  }
  if constexpr (ag::testing::is_double) ag::testing::check_gradients(fused, {alpha, values});
  ag::testing::check_error([&] { nn::attention_context_fused(values, values); },
                           {"attention_context_fused", "(B,S,1)", "(B,S,H)"});
}

TEST_CASE("fast/scaled_masked_softmax: equals softmax(masked_fill(x / divisor, mask, -inf))") {
  const int64_t Tq = 6, Tk = 6;
  Tensor scores = ag::testing::leaf({2, 3, Tq, Tk}, 21);
  const real divisor = real(2.45);
  Tensor causal = nn::causal_mask(Tq);
  Tensor blocked_row = nn::causal_mask(Tq);  // row 2 blocked everywhere: zero weights
  for (int64_t k = 0; k < Tk; ++k) blocked_row.data()[2 * Tk + k] = 1;
  const real minus_inf = -std::numeric_limits<real>::infinity();
  for (const Tensor& mask : {Tensor(), causal, blocked_row}) {
    INFO("mask defined: " << mask.defined());
    auto fused = [&](const std::vector<Tensor>& x) {
      return nn::scaled_masked_softmax(x[0], divisor, mask);
    };
    auto composed = [&](const std::vector<Tensor>& x) {
      Tensor z = x[0] / divisor;
      return softmax(mask.defined() ? masked_fill(z, mask, minus_inf) : z, -1);
    };
    const std::vector<Tensor> got = values_and_grads(fused, {scores}, 5);
    const std::vector<Tensor> want = values_and_grads(composed, {scores}, 5);
    const double tolerance = ag::testing::is_double ? 1e-12 : 1e-6;
    CHECK(ag::testing::max_abs_diff(got[0], want[0]) <= tolerance);
    CHECK(ag::testing::max_abs_diff(got[1], want[1]) <= tolerance);
    if constexpr (ag::testing::is_double) ag::testing::check_gradients(fused, {scores});
  }
  // The fully blocked row: weights and gradients exactly 0, not NaN.
  Tensor y = nn::scaled_masked_softmax(scores, divisor, blocked_row);
  for (int64_t k = 0; k < Tk; ++k) CHECK(y.data()[2 * Tk + k] == 0);
  ag::testing::check_error([&] { nn::scaled_masked_softmax(scores, divisor, nn::causal_mask(4)); },
                           {"scaled_masked_softmax", "(Tq, Tk) = (6, 6)"});
}

TEST_CASE("fast/multi_head_attention_fused: equals split heads, attention, merge heads op by op") {
  const int64_t B = 2, Tq = 5, Tk = 5, d = 12, heads = 3;
  Tensor q = ag::testing::leaf({B, Tq, d}, 31);
  Tensor k = ag::testing::leaf({B, Tk, d}, 32);
  Tensor v = ag::testing::leaf({B, Tk, d}, 33);
  Tensor blocked_row = nn::causal_mask(Tq);  // and row 1 blocked everywhere: a zero context
  for (int64_t j = 0; j < Tk; ++j) blocked_row.data()[1 * Tk + j] = 1;
  // (B,T,d) -> (B,h,T,d_h), the reference attention step by step (odd masks take the
  // composed path of scaled_dot_product_attention: a (B,1,Tq,Tk) mask)
  auto reference_mask = [&](const Tensor& mask) {
    return mask.defined() ? unsqueeze(unsqueeze(mask, 0), 0) : mask;
  };
  for (const Tensor& mask : {Tensor(), nn::causal_mask(Tq), blocked_row}) {
    INFO("mask defined: " << mask.defined());
    auto fused = [&](const std::vector<Tensor>& x) {
      return nn::multi_head_attention_fused(x[0], x[1], x[2], heads, mask);
    };
    for (bool composed_path : {false, true}) {
      INFO("reference through the " << (composed_path ? "composed" : "fused-softmax") << " path");
      auto reference = [&](const std::vector<Tensor>& x) {
        const Tensor m = composed_path ? reference_mask(mask) : mask;
        return nn::merge_heads(nn::scaled_dot_product_attention(nn::split_heads(x[0], heads),
                                                                nn::split_heads(x[1], heads),
                                                                nn::split_heads(x[2], heads), m)
                                   .context);
      };
      const std::vector<Tensor> got = values_and_grads(fused, {q, k, v}, 9);
      const std::vector<Tensor> want = values_and_grads(reference, {q, k, v}, 9);
      const double tolerance = ag::testing::is_double ? 1e-12 : 1e-4;
      for (size_t i = 0; i < got.size(); ++i) {
        INFO("output/gradient " << i);
        CHECK(ag::testing::max_abs_diff(got[i], want[i]) <= tolerance);
      }
    }
    if constexpr (ag::testing::is_double) ag::testing::check_gradients(fused, {q, k, v});
  }
  ag::testing::check_error([&] { nn::multi_head_attention_fused(q, k, v, 5, Tensor()); },
                           {"multi_head_attention_fused", "d = 12", "heads = 5"});
  ag::testing::check_error(
      [&] { nn::multi_head_attention_fused(q, k, v, heads, nn::causal_mask(3)); },
      {"multi_head_attention_fused", "(Tq, Tk) = (5, 5)"});
}

}  // namespace
