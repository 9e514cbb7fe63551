// Tests of the engine's fast paths against the plain code they replace: the
// float exp and tanh of core/fast_math.hpp against std::exp and std::tanh
// (computed in double), and, further down, each fused or contiguous kernel
// against the plain loop or the composed ops beside it.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

#include "autograd/attograd.hpp"
#include "core/fast_math.hpp"
#include "core/kernels.hpp"
#include "core/softmax_row.hpp"
#include "layers/attention/masked_softmax.hpp"
#include "layers/nn.hpp"
#include "tests/helpers.hpp"
#include "tests/module_gradcheck.hpp"

namespace {

using namespace ag;
using ag::testing::check_same_error;
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

TEST_CASE("fast/sigmoid_float: within 2 ulp of 1/(1+e^-x) on [-87, 88], 0 and 1 at the ends") {
  double worst = 0;
  for (float x = -87.0f; x <= 88.0f; x += 0.000731f)
    worst = std::max(worst, ulps(fast::sigmoid_float(x), 1 / (1 + std::exp(-double(x)))));
  INFO("worst error " << worst << " ulp");
  CHECK(worst <= 2.0);
  const float inf = std::numeric_limits<float>::infinity();
  CHECK(fast::sigmoid_float(0.0f) == 0.5f);
  CHECK(fast::sigmoid_float(-200.0f) == 0.0f);  // e^200 overflows to inf: 1/inf, not NaN
  CHECK(fast::sigmoid_float(-inf) == 0.0f);
  CHECK(fast::sigmoid_float(200.0f) == 1.0f);
  CHECK(fast::sigmoid_float(inf) == 1.0f);
  CHECK(std::isnan(fast::sigmoid_float(std::numeric_limits<float>::quiet_NaN())));
}

TEST_CASE("fast/sigmoid: within 4 ulp of 1 / (1 + e^-x), exactly 0.5 at 0, 0 and 1 at the ends") {
  // Down to -87: below, sigma(x) < 1.2e-38 is a subnormal float, which the float
  // exp flushes to 0 (checked below).
  std::vector<real> xs;
  for (double x = -87; x <= 100; x += 0.0137) xs.push_back(real(x));
  for (double x = -1e-3; x <= 1e-3; x += 3.3e-6) xs.push_back(real(x));
  const Tensor x = from_vector(xs, {int64_t(xs.size())});
  const Tensor y = sigmoid(x);
  double worst = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const double want = 1 / (1 + std::exp(-double(xs[i])));
    if constexpr (ag::testing::is_double)
      worst = std::max(worst, std::abs(double(y.data()[i]) - want) / want);
    else
      worst = std::max(worst, ulps(y.data()[i], want));
  }
  const std::string unit = ag::testing::is_double ? " (relative)" : " ulp";
  INFO("worst error " << worst << unit);
  CHECK(worst <= (ag::testing::is_double ? 1e-15 : 4.0));
  const real inf = std::numeric_limits<real>::infinity();
  const Tensor ends = sigmoid(from_vector({0, -inf, inf, -90, -200, 200}, {6}));
  check_values(ends, {0.5, 0, 1, 0, 0, 1});
  CHECK(ends.data()[3] < real(1.2e-38));
  CHECK(std::isnan(sigmoid(full({1}, std::numeric_limits<real>::quiet_NaN())).item()));
}

TEST_CASE("fast/tanh op: the engine's tanh, exp and sigmoid agree with std:: on a tensor") {
  Tensor x = from_vector({-3, -0.7, -0.2, 0, 0.1, 0.5, 0.9, 4}, {2, 4});
  std::vector<double> want_tanh, want_exp, want_sigmoid;
  for (real v : x.to_vector()) {
    want_tanh.push_back(std::tanh(double(v)));
    want_exp.push_back(std::exp(double(v)));
    want_sigmoid.push_back(1 / (1 + std::exp(-double(v))));
  }
  check_values(tanh(x), want_tanh);
  check_values(exp(x), want_exp);
  check_values(sigmoid(x), want_sigmoid);
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

// softmax and log_softmax of one slice written out in double: exp(x - max) / sum,
// x - max - log(sum); a slice all -inf gives weights 0 and log-weights -inf.
std::vector<double> softmax_in_double(const std::vector<double>& x, bool log) {
  const double inf = std::numeric_limits<double>::infinity();
  double max = -inf, sum = 0;
  for (double v : x) max = std::max(max, v);
  if (max == -inf) max = 0;
  for (double v : x) sum += std::exp(v - max);
  std::vector<double> y;
  for (double v : x) {
    if (log)
      y.push_back(sum == 0 ? -inf : v - max - std::log(sum));
    else
      y.push_back(sum == 0 ? 0 : std::exp(v - max) / sum);
  }
  return y;
}

TEST_CASE(
    "fast/softmax: the row rule equals the formula in double along every dim, masked rows "
    "included") {
  Generator gen(7);
  const real inf = std::numeric_limits<real>::infinity();
  for (int64_t size : {1, 5, 8, 32, 37}) {
    Tensor x = randn({3, 4, size}, gen) * real(4);
    x.data()[2] = -inf;                                            // one masked key
    for (int64_t k = 0; k < size; ++k) x.data()[size + k] = -inf;  // a fully masked row
    const double tolerance = ag::testing::is_double ? 1e-14 : 1e-6;
    for (int64_t dim : {0, 1, 2})
      for (bool log : {false, true}) {
        INFO("size " << size << ", dim " << dim << (log ? ", log_softmax" : ", softmax"));
        const Tensor y = log ? kernel::log_softmax(x, dim) : kernel::softmax(x, dim);
        // each slice along dim: the elements base + k * stride
        const Shape& shape = x.shape();
        const int64_t stride = dim == 2 ? 1 : dim == 1 ? size : 4 * size;
        Tensor expected = Tensor::empty(shape);
        for (int64_t base = 0; base < x.numel(); ++base) {
          if ((base / stride) % shape[dim] != 0) continue;  // not a slice's first element
          std::vector<double> slice;
          for (int64_t k = 0; k < shape[dim]; ++k) slice.push_back(x.data()[base + k * stride]);
          const std::vector<double> want = softmax_in_double(slice, log);
          for (int64_t k = 0; k < shape[dim]; ++k)
            expected.data()[base + k * stride] = static_cast<real>(want[k]);
        }
        for (int64_t i = 0; i < y.numel(); ++i) {
          const double got = y.data()[i], want = expected.data()[i];
          INFO("element " << i << ": " << got << ", expected " << want);
          CHECK(((std::isinf(want) && got == want) ||
                 std::abs(got - want) <= tolerance * std::max(1.0, std::abs(want))));
        }
      }
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

TEST_CASE("fast/small blocks: a freed block is handed out again, live blocks never overlap") {
  // Sizes from 1 byte to 1 KiB - 1, twice, each block filled with its own byte.
  std::vector<std::pair<unsigned char*, size_t>> live;
  for (int round = 0; round < 2; ++round)
    for (size_t bytes = 1; bytes < 1024; bytes += 7) {
      auto* p = static_cast<unsigned char*>(allocate_buffer(bytes));
      CHECK(reinterpret_cast<uintptr_t>(p) % 16 == 0);
      std::memset(p, int(live.size() % 251), bytes);
      live.emplace_back(p, bytes);
    }
  for (size_t i = 0; i < live.size(); ++i)
    for (size_t j = 0; j < live[i].second; ++j) REQUIRE(live[i].first[j] == i % 251);
#if !defined(__SANITIZE_ADDRESS__)  // (there every block comes from plain new)
  // The block freed last is the next one given for its size class (16 bytes
  // wide), and not for another class.
  auto [p, bytes] = live[100];  // 701 bytes: the class of 689 - 704 bytes
  free_buffer(p, bytes);
  CHECK(allocate_buffer(704) == p);
  free_buffer(p, 704);
  void* other = allocate_buffer(721);
  CHECK(other != p);
  free_buffer(other, 721);
  CHECK(allocate_buffer(bytes) == p);
#endif
  for (const auto& [q, n] : live) free_buffer(q, n);
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
  // A second backward adds to .grad in place ...
  loss().backward();
  ag::testing::check_values(x.grad(), {4, 4, 4, 10, 10, 10, 6, 6, 6, 10, 10, 10});
  // ... also when the user holds a handle to it: the handle sees the sum, as in PyTorch.
  Tensor held = x.grad();
  loss().backward();
  CHECK(held.is_same(x.grad()));
  ag::testing::check_values(held, {6, 6, 6, 15, 15, 15, 9, 9, 9, 15, 15, 15});
  // Through a non-leaf, along dim 1.
  Tensor w = from_vector({1, 2, 3, 4}, {1, 4}).requires_grad_();
  Tensor h = w * real(10);
  (sum(narrow(h, 1, 0, 3)) + sum(narrow(h, 1, 2, 2)) * real(2)).backward();
  ag::testing::check_values(w.grad(), {10, 10, 30, 20});
}

}  // namespace

namespace {

using namespace ag;

// The fast and the reference mode through the same public functions: the
// output and the gradients of every input must agree (to float rounding), a
// gradcheck must pass in each mode (double flavor), and a bad call must raise
// the same message in both.

// Forward and the gradients of sum(w * f(inputs)) for random weights w, so that
// every output element carries a different gradient.
using Function = std::function<Tensor(const std::vector<Tensor>&)>;

std::vector<Tensor> op_values_and_grads(const Function& f, const std::vector<Tensor>& inputs,
                                        bool reference) {
  ReferenceModeGuard mode(reference);
  for (const Tensor& x : inputs) x.impl()->grad.reset();
  Tensor out = f(inputs);
  Generator gen(5);
  Tensor weights = randn(out.shape(), gen);
  sum(out * weights).backward();
  std::vector<Tensor> result{out.detach()};
  for (const Tensor& x : inputs) result.push_back(x.grad());
  return result;
}

// f in both modes: values and gradients agree, and (double flavor) each mode's
// gradients agree with finite differences. Returns the largest difference seen.
double check_op_modes_agree(const Function& f, const std::vector<Tensor>& inputs,
                            double float_tolerance = 1e-5) {
  const std::vector<Tensor> fast = op_values_and_grads(f, inputs, false);
  const std::vector<Tensor> reference = op_values_and_grads(f, inputs, true);
  const double tolerance = ag::testing::is_double ? 1e-12 : float_tolerance;
  double worst = 0;
  for (size_t i = 0; i < fast.size(); ++i) {
    INFO((i == 0 ? "output" : "gradient of input " + std::to_string(i - 1)));
    REQUIRE(fast[i].defined() == reference[i].defined());
    if (!fast[i].defined()) continue;
    const double diff = ag::testing::max_abs_diff(fast[i], reference[i]);
    CHECK(diff <= tolerance);
    worst = std::max(worst, diff);
  }
  if constexpr (ag::testing::is_double) {
    for (bool plain : {false, true}) {
      INFO("gradcheck in " << std::string(plain ? "reference" : "fast") << " mode");
      ReferenceModeGuard mode(plain);
      ag::testing::check_gradients(f, inputs);
    }
  }
  return worst;
}

// Both outputs of an attention, flattened into one tensor, so that the
// gradients reach the inputs through the weights as well as the context.
Tensor both(const nn::AttentionOutput& out) {
  return cat({reshape(out.context, {-1}), reshape(out.weights, {-1})}, 0);
}

TEST_CASE("modes/reference mode: set by the guard and restored, named in mode_name()") {
  const bool before = reference_mode();
  {
    ReferenceModeGuard plain;
    CHECK(reference_mode());
    CHECK(std::string(mode_name()) == "reference");
    {
      ReferenceModeGuard fast(false);
      CHECK(!reference_mode());
      CHECK(std::string(mode_name()) == "fast");
    }
    CHECK(reference_mode());
  }
  CHECK(reference_mode() == before);
}

TEST_CASE(
    "modes/scaled_dot_product_attention [F2.4] [F4.8]: both modes agree for every mask shape") {
  const int64_t B = 2, h = 3, Tq = 4, Tk = 5, dk = 6;
  Tensor q = ag::testing::leaf({B, h, Tq, dk}, 21);
  Tensor k = ag::testing::leaf({B, h, Tk, dk}, 22);
  Tensor v = ag::testing::leaf({B, h, Tk, 7}, 23);
  Generator gen(3);
  auto random_mask = [&](const Shape& shape) {
    Tensor m = rand(shape, gen);
    for (int64_t i = 0; i < m.numel(); ++i) m.data()[i] = m.data()[i] < real(0.3) ? 1 : 0;
    return m;
  };
  Tensor full_row = zeros({Tq, Tk});
  for (int64_t j = 0; j < Tk; ++j) full_row.data()[2 * Tk + j] = 1;
  const std::vector<std::pair<const char*, Tensor>> masks = {
      {"none", Tensor()},
      {"(Tq,Tk)", random_mask({Tq, Tk})},
      {"(Tq,Tk) with a fully blocked row", full_row},
      {"(1,Tk)", random_mask({1, Tk})},
      {"(Tq,1)", random_mask({Tq, 1})},
      {"(B,1,1,Tk) padding", random_mask({B, 1, 1, Tk})},
      {"(B,1,Tq,Tk)", random_mask({B, 1, Tq, Tk})},
      {"(B,h,Tq,Tk)", random_mask({B, h, Tq, Tk})},
      {"(1,h,Tq,1)", random_mask({1, h, Tq, 1})},
  };
  double worst = 0;
  for (const auto& [name, mask] : masks) {
    INFO("mask " << name);
    const Tensor m = mask;
    auto f = [m](const std::vector<Tensor>& x) {
      return both(nn::scaled_dot_product_attention(x[0], x[1], x[2], m));
    };
    worst = std::max(worst, check_op_modes_agree(f, {q, k, v}));
    // blocked weights are exactly 0 in both modes
    for (bool plain : {false, true}) {
      ReferenceModeGuard mode(plain);
      Tensor w = nn::scaled_dot_product_attention(q, k, v, m).weights;
      if (!m.defined()) continue;
      Tensor mb = kernel::broadcast_to(m, w.shape());
      for (int64_t i = 0; i < w.numel(); ++i)
        if (mb.data()[i] != 0) CHECK(w.data()[i] == 0);
    }
  }
  MESSAGE("largest fast/reference difference: " << worst);
  check_same_error(
      [&] {
        nn::scaled_dot_product_attention(q, k, v, zeros({4, Tq, Tk}));
      },
      {"scaled_dot_product_attention", "mask (4,4,5)", "(2,3,4,5)"});
  check_same_error([&] { nn::scaled_dot_product_attention(q, v, v); },
                   {"scaled_dot_product_attention", "same last dim d_k"});
  check_same_error(
      [&] {
        nn::scaled_dot_product_attention(zeros({2, 0}), zeros({3, 0}), zeros({3, 1}));
      },
      {"scaled_dot_product_attention", "d_k = 0"});
  check_same_error(
      [&] {
        nn::scaled_dot_product_attention(q, zeros({3, h, Tk, dk}), v);
      },
      {"scaled_dot_product_attention", "batch dims", "do not broadcast"});
}

TEST_CASE(
    "modes/scaled_dot_product_attention [F2.4] [F4.8]: rows of a vector of keys or more, four at "
    "a time, agree too") {
  // Rows of at least one Lanes of keys (16 floats, 8 doubles) run four at a
  // time in fast mode, the last rows % 4 and the keys past the last whole
  // Lanes one at a time. Tk = 21 and 37 leave a tail of keys; B h Tq = 10
  // rows leave two rows over; Tk = 32 has no tail.
  for (const int64_t Tk : {21, 32, 37}) {
    const int64_t B = 1, h = 2, Tq = 5, dk = 3;
    INFO("Tk = " << Tk);
    Tensor q = ag::testing::leaf({B, h, Tq, dk}, 41);
    Tensor k = ag::testing::leaf({B, h, Tk, dk}, 42);
    Tensor v = ag::testing::leaf({B, h, Tk, 2}, 43);
    Generator gen(5);
    Tensor random = rand({B, h, Tq, Tk}, gen);
    for (int64_t i = 0; i < random.numel(); ++i)
      random.data()[i] = random.data()[i] < real(0.3) ? 1 : 0;
    Tensor causal = slice(nn::causal_mask(Tk), 0, Tk - Tq, Tk);  // (Tq,Tk): the last Tq rows
    Tensor blocked_rows = zeros({Tq, 1});                        // one value for all keys of a row
    blocked_rows.data()[1] = 1;
    blocked_rows.data()[4] = 1;
    const std::vector<std::pair<const char*, Tensor>> masks = {
        {"none", Tensor()},
        {"(B,h,Tq,Tk) random", random},
        {"(Tq,Tk) causal", causal},
        {"(Tq,1) rows 1 and 4 blocked", blocked_rows},
    };
    for (const auto& [name, mask] : masks) {
      INFO("mask " << name);
      const Tensor m = mask;
      check_op_modes_agree(
          [m](const std::vector<Tensor>& x) {
            return both(nn::scaled_dot_product_attention(x[0], x[1], x[2], m));
          },
          {q, k, v});
    }
    // Special values: a NaN score where the mask blocks is ignored, one where
    // it does not makes the row NaN; -inf scores get weight 0; a row blocked
    // everywhere gets zeros; a score of 150 in the last key is the row's max
    // (else its exp would overflow). The same in both modes.
    Tensor scores = ag::testing::leaf({B, h, Tq, Tk}, 44);
    Tensor mask = zeros({Tq, Tk});
    for (int64_t j = 0; j < Tk; ++j) mask.data()[3 * Tk + j] = 1;  // row 3 blocked everywhere
    mask.data()[0 * Tk + 7] = 1;
    scores.data()[0 * Tk + 7] = std::numeric_limits<real>::quiet_NaN();       // blocked: ignored
    scores.data()[1 * Tk + Tk - 1] = std::numeric_limits<real>::quiet_NaN();  // open: row NaN
    scores.data()[2 * Tk + 2] = -std::numeric_limits<real>::infinity();
    scores.data()[4 * Tk + Tk - 1] = 300;  // the last key, past the whole Lanes: the max
    const real minus_inf = -std::numeric_limits<real>::infinity();
    const Tensor fast = nn::detail::scaled_masked_softmax(scores, 2, mask);
    const Tensor plain = softmax(masked_fill(scores / real(2), mask, minus_inf), -1);
    for (const Tensor& w : {fast, plain}) {
      const real* row = w.data();  // the first head's rows
      real sum0 = 0, sum2 = 0;
      for (int64_t j = 0; j < Tk; ++j) {
        CHECK_FALSE(std::isnan(row[j]));
        sum0 += row[j];
        CHECK(std::isnan(row[Tk + j]));
        sum2 += row[2 * Tk + j];
        CHECK(row[3 * Tk + j] == 0);
      }
      CHECK(row[7] == 0);
      CHECK(row[2 * Tk + 2] == 0);
      CHECK(row[4 * Tk + Tk - 1] == doctest::Approx(1));  // e^(150 - max) with the right max
      CHECK(sum0 == doctest::Approx(1).epsilon(1e-5));
      CHECK(sum2 == doctest::Approx(1).epsilon(1e-5));
    }
    for (int64_t i = 0; i < fast.numel(); ++i) {
      if (std::isnan(plain.data()[i])) {
        CHECK(std::isnan(fast.data()[i]));
      } else {
        CHECK(fast.data()[i] == doctest::Approx(plain.data()[i]).epsilon(1e-5));
      }
    }
  }
}

TEST_CASE(
    "fast/scaled_masked_softmax_rows [F2.4] [F4.8]: in place or not, every row count and length, "
    "as one row at a time") {
  // MultiHeadAttention runs the rows in place (y = x); the backward may write
  // dx over g. Rows go four at a time when they hold a Lanes of keys or more:
  // the result must be the engine's one softmax rule (core/softmax_row.hpp)
  // applied row by row, with the same NaN and the same exact zeros.
  const real nan = std::numeric_limits<real>::quiet_NaN();
  const real inf = std::numeric_limits<real>::infinity();
  const real divisor = 3;
  const double tolerance = ag::testing::is_double ? 1e-14 : 2e-6;
  Generator gen(12);
  for (const int64_t size : {0, 1, 7, 8, 9, 15, 16, 17, 23, 31, 32, 33, 40}) {
    for (const int64_t rows : {0, 1, 3, 4, 5, 8, 9}) {
      Tensor x = randn({rows, size}, gen), g = randn({rows, size}, gen);
      for (int64_t i = 0; i < x.numel(); ++i) {  // a few special scores
        if (i % 29 == 3) x.data()[i] = nan;
        if (i % 31 == 5) x.data()[i] = -inf;
        if (i % 37 == 7) x.data()[i] = 60;
      }
      Tensor per_key = rand({rows, size}, gen), per_row = rand({rows, 1}, gen);
      for (Tensor* m : {&per_key, &per_row})
        for (int64_t i = 0; i < m->numel(); ++i) m->data()[i] = m->data()[i] < real(0.3) ? 1 : 0;
      if (rows > 2) {  // a row blocked everywhere
        for (int64_t k = 0; k < size; ++k) per_key.data()[2 * size + k] = 1;
      }
      for (const Tensor& mask : {Tensor(), per_key, per_row}) {
        CAPTURE(size);
        CAPTURE(rows);
        CAPTURE(mask.defined() ? mask.size(1) : -1);
        const nn::detail::MaskRows mask_rows = nn::detail::mask_rows(mask, {rows, size});
        // one row at a time: mask and scale, then softmax_row
        Tensor expected = Tensor::empty({rows, size});
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t k = 0; k < size; ++k) {
            const real blocked =
                mask.defined() ? mask.data()[r * mask.size(1) + (mask.size(1) == 1 ? 0 : k)] : 0;
            expected.data()[r * size + k] = blocked != 0 ? -inf : x.data()[r * size + k] / divisor;
          }
        for (int64_t r = 0; r < rows; ++r)
          kernel::softmax_row(expected.data() + r * size, expected.data() + r * size, size);
        Tensor apart = Tensor::empty({rows, size}), in_place = x.clone();
        nn::detail::scaled_masked_softmax_rows(x.data(), divisor, mask_rows, apart.data(), rows,
                                               size);
        nn::detail::scaled_masked_softmax_rows(in_place.data(), divisor, mask_rows, in_place.data(),
                                               rows, size);
        for (const Tensor& y : {apart, in_place})
          for (int64_t i = 0; i < y.numel(); ++i) {
            const real want = expected.data()[i], got = y.data()[i];
            if (std::isnan(want) || want == 0) {
              CHECK((std::isnan(want) ? std::isnan(got) : got == 0));
            } else {
              CHECK(std::abs(double(got) - double(want)) <= tolerance);
            }
          }
        // backward: dx = y (g - sum(g y)) / divisor, apart and over g
        Tensor dx_expected = Tensor::empty({rows, size}), dx = Tensor::empty({rows, size});
        Tensor dx_over_g = g.clone();
        for (int64_t r = 0; r < rows; ++r)
          kernel::softmax_backward_row(g.data() + r * size, apart.data() + r * size,
                                       dx_expected.data() + r * size, size, 1 / divisor);
        nn::detail::scaled_softmax_backward_rows(g.data(), apart.data(), divisor, dx.data(), rows,
                                                 size);
        nn::detail::scaled_softmax_backward_rows(dx_over_g.data(), apart.data(), divisor,
                                                 dx_over_g.data(), rows, size);
        for (const Tensor& d : {dx, dx_over_g})
          for (int64_t i = 0; i < d.numel(); ++i) {
            const real want = dx_expected.data()[i], got = d.data()[i];
            if (std::isnan(want)) {
              CHECK(std::isnan(got));
            } else {
              CHECK(std::abs(double(got) - double(want)) <= tolerance);
            }
          }
      }
    }
  }
}

TEST_CASE("modes/MultiHeadAttention [F0.9] [F0.10]: both modes agree, with every kind of mask") {
  const int64_t B = 2, T = 5, S = 4, d = 12, heads = 3;
  manual_seed(4);
  nn::MultiHeadAttention mha(d, heads);
  Tensor x = ag::testing::leaf({B, T, d}, 31);
  Tensor memory = ag::testing::leaf({B, S, d}, 32);
  Tensor padding = nn::padding_mask(std::vector<int64_t>{4, 2}, S);  // (B,1,S)
  Tensor padding_2d = reshape(padding, {B, S});
  Tensor per_head = zeros({B, heads, T, S});
  for (int64_t i = 0; i < per_head.numel(); i += 3) per_head.data()[i] = 1;
  struct Case {
    const char* name;
    Tensor attn_mask, key_padding_mask;
  };
  const Case cases[] = {
      {"none", Tensor(), Tensor()},
      {"attn (T,S)", slice(nn::causal_mask(5), 1, 0, S), Tensor()},
      {"attn (B,1,S)", padding, Tensor()},
      {"key padding (B,S)", Tensor(), padding_2d},
      {"key padding (B,1,S) and attn (T,S)", slice(nn::causal_mask(5), 1, 0, S), padding},
      {"attn (B,h,T,S) and key padding", per_head, padding_2d},
  };
  std::vector<Tensor> inputs{x, memory};
  for (const Tensor& p : mha.parameters()) inputs.push_back(p);
  double worst = 0;
  for (const Case& c : cases) {
    INFO("masks: " << c.name);
    auto f = [&](const std::vector<Tensor>& in) {
      nn::AttentionOutput out = mha.forward(in[0], in[1], in[1], c.attn_mask, c.key_padding_mask);
      return both(out);
    };
    const std::vector<Tensor> fast = op_values_and_grads(f, inputs, false);
    const std::vector<Tensor> reference = op_values_and_grads(f, inputs, true);
    for (size_t i = 0; i < fast.size(); ++i) {
      INFO("output/gradient " << i);
      if (!fast[i].defined() || !reference[i].defined()) {
        CHECK(fast[i].defined() == reference[i].defined());
        continue;
      }
      const double diff = ag::testing::max_abs_diff(fast[i], reference[i]);
      CHECK(diff <= (ag::testing::is_double ? 1e-12 : 1e-5));
      worst = std::max(worst, diff);
    }
    if constexpr (ag::testing::is_double) {
      for (bool plain : {false, true}) {
        INFO("gradcheck in " << std::string(plain ? "reference" : "fast") << " mode");
        ReferenceModeGuard mode(plain);
        // k_proj.bias moves no output (see multi_head_attention.hpp): its gradient is 0
        ag::testing::check_module_gradients(mha,
                                            [&] {
                                              return f({x, memory});
                                            },
                                            {x, memory}, {"k_proj.bias"});
      }
    }
  }
  MESSAGE("largest fast/reference difference: " << worst);
  // A (B,S) padding mask given as attn_mask is refused (B = 2 differs from T = 5).
  check_same_error([&] { mha.forward(x, memory, memory, padding_2d); },
                   {"MultiHeadAttention", "attn_mask (2,4)", "key_padding_mask"});
  check_same_error(
      [&] {
        mha.forward(x, memory, memory, Tensor(), zeros({B, T}));
      },
      {"MultiHeadAttention", "key_padding_mask (2,5)", "(B,Tk) = (2,4)"});
}

TEST_CASE("modes/index_select read at every step: the rows go into the sum gathered so far") {
  // An embedding read once per decoder step, tokens repeated within and across
  // steps: in fast mode each step's backward adds its rows into the sum.
  Tensor table = ag::testing::leaf({6, 4}, 17);
  const std::vector<std::vector<int64_t>> steps = {{1, 3, 1}, {0, 3, 5}, {5, 5, 2}};
  auto f = [&steps](const std::vector<Tensor>& in) {
    Tensor total;
    for (size_t t = 0; t < steps.size(); ++t) {
      const Tensor rows = index_select(in[0], 0, steps[t]) * real(t + 1);
      total = total.defined() ? total + rows : rows;
    }
    return total;
  };
  check_op_modes_agree(f, {table});
}

TEST_CASE("modes/AdditiveScore and weighted_context read at every step of a decoder") {
  // Three decoder steps read the same projected keys, v and encoder states:
  // their gradients gather one term per step, which the fast backward adds
  // into the sum gathered so far (GradSums) instead of returning new tensors.
  const int64_t B = 2, S = 4, H = 5, A = 9;
  manual_seed(6);
  nn::AdditiveScore score(H, H, A);
  Tensor queries = ag::testing::leaf({3, B, H}, 15), states = ag::testing::leaf({B, S, H}, 16);
  auto decode = [&score](const std::vector<Tensor>& x) {
    const Tensor keys = score.project_keys(x[1]);
    Tensor total;
    for (int64_t t = 0; t < 3; ++t) {
      const Tensor query = squeeze(narrow(x[0], 0, t, 1), 0);
      const Tensor context = nn::weighted_context(softmax(score.score(query, keys), 1), x[1]);
      total = total.defined() ? total + context : context;
    }
    return total;
  };
  check_op_modes_agree(decode, {queries, states});
  if constexpr (ag::testing::is_double)
    for (bool plain : {false, true}) {
      ReferenceModeGuard mode(plain);
      ag::testing::check_module_gradients(score, [&] { return decode({queries, states}); });
    }
}

TEST_CASE("modes/AdditiveScore [F1.5] and weighted_context [F4.7]: both modes agree") {
  const int64_t B = 3, S = 5, Hq = 7, Hk = 6, A = 19;  // A not a multiple of 8: the lanes' tail
  manual_seed(5);
  nn::AdditiveScore score(Hq, Hk, A);
  Tensor query = ag::testing::leaf({B, Hq}, 11);
  Tensor keys = ag::testing::leaf({B, S, Hk}, 12);
  Tensor mask = nn::padding_mask(std::vector<int64_t>{5, 3, 1}, S);
  std::vector<Tensor> inputs{query, keys};
  for (const Tensor& p : score.parameters()) inputs.push_back(p);
  auto f = [&](const std::vector<Tensor>& in) {
    nn::AttentionOutput out = score.forward(in[0], in[1], mask);
    return both(out);
  };
  const std::vector<Tensor> fast = op_values_and_grads(f, inputs, false);
  const std::vector<Tensor> reference = op_values_and_grads(f, inputs, true);
  for (size_t i = 0; i < fast.size(); ++i) {
    INFO("output/gradient " << i);
    CHECK(ag::testing::max_abs_diff(fast[i], reference[i]) <=
          (ag::testing::is_double ? 1e-12 : 1e-5));
  }
  if constexpr (ag::testing::is_double)
    for (bool plain : {false, true}) {
      ReferenceModeGuard mode(plain);
      ag::testing::check_module_gradients(score, [&] { return f({query, keys}); }, {query, keys});
    }
  // weighted_context alone
  Tensor weights = ag::testing::leaf({B, S}, 13), values = ag::testing::leaf({B, S, 21}, 14);
  check_op_modes_agree(
      [](const std::vector<Tensor>& x) { return nn::weighted_context(x[0], x[1]); },
      {weights, values});
  check_same_error([&] { nn::weighted_context(values, values); },
                   {"weighted_context", "(B,S)", "(B,S,H)"});
  check_same_error([&] { score.score(keys, score.project_keys(keys)); }, {"AdditiveScore"});
}

TEST_CASE("modes/conv1d: the loops and the im2col GEMMs agree, every stride, padding, dilation") {
  struct Setting {
    int64_t kernel, stride, padding, dilation;
  };
  const Setting settings[] = {{3, 1, 1, 1}, {1, 1, 0, 1}, {4, 2, 3, 1}, {3, 3, 2, 2}, {5, 1, 0, 1}};
  Tensor x = ag::testing::leaf({3, 5, 11}, 61);
  double worst = 0;
  for (const Setting& s : settings) {
    INFO("kernel " << s.kernel << " stride " << s.stride << " padding " << s.padding << " dilation "
                   << s.dilation);
    Tensor w = ag::testing::leaf({7, 5, s.kernel}, 62), b = ag::testing::leaf({7}, 63);
    auto with_bias = [&](const std::vector<Tensor>& in) {
      return nn::conv1d(in[0], in[1], in[2], s.stride, s.padding, s.dilation);
    };
    auto without_bias = [&](const std::vector<Tensor>& in) {
      return nn::conv1d(in[0], in[1], Tensor(), s.stride, s.padding, s.dilation);
    };
    worst = std::max(worst, check_op_modes_agree(with_bias, {x, w, b}));
    worst = std::max(worst, check_op_modes_agree(without_bias, {x, w}));
  }
  MESSAGE("largest fast/reference difference: " << worst);
  nn::Conv1d conv(5, 7, 3);
  check_same_error(
      [&] {
        conv.forward(zeros({2, 5, 1}));
      },
      {"Conv1d:", "spans 3 steps", "1 steps + 2 * padding 0 = 1"});
  check_same_error([&] { nn::conv1d(x, zeros({7, 4, 3})); }, {"conv1d:", "in_channels = 4"});
}

TEST_CASE(
    "modes/PointAttention [F0.4]: both modes agree (the context by weighted_context's twin)") {
  manual_seed(6);
  nn::PointAttention attention(7);
  Tensor x = ag::testing::leaf({3, 5, 7}, 71);
  std::vector<Tensor> inputs{x};
  for (const Tensor& p : attention.parameters()) inputs.push_back(p);
  auto f = [&](const std::vector<Tensor>& in) { return both(attention.forward(in[0])); };
  const std::vector<Tensor> fast = op_values_and_grads(f, inputs, false);
  const std::vector<Tensor> reference = op_values_and_grads(f, inputs, true);
  for (size_t i = 0; i < fast.size(); ++i) {
    INFO("output/gradient " << i);
    CHECK(ag::testing::max_abs_diff(fast[i], reference[i]) <=
          (ag::testing::is_double ? 1e-12 : 1e-5));
  }
  if constexpr (ag::testing::is_double)
    for (bool plain : {false, true}) {
      ReferenceModeGuard mode(plain);
      // the score's bias moves every score alike, which softmax ignores: its gradient is 0
      ag::testing::check_module_gradients(attention, [&] { return f({x}); }, {x}, {"linear.bias"});
    }
  check_same_error([&] { attention.forward(zeros({3, 5})); }, {"PointAttention", "(3,5)"});
}

TEST_CASE("modes/linear adds into the gradients gathered so far: a layer used at every step") {
  // h_t = tanh(W h_{t-1} + b + x), four steps: W, b and h gather one term per
  // step; in fast mode each step's backward adds its term into the sum (GradSums).
  Tensor x = ag::testing::leaf({3, 5}, 61), w = ag::testing::leaf({5, 5}, 62);
  Tensor b = ag::testing::leaf({5}, 63);
  auto unrolled = [](const std::vector<Tensor>& in) {
    Tensor h = in[0];
    for (int t = 0; t < 4; ++t) h = tanh(nn::linear(h, in[1], in[2]) + in[0]);
    return h;
  };
  check_op_modes_agree(unrolled, {x, w, b});
  // Gradients of repeated backward calls add up in .grad, in place: a .grad
  // handle the user holds sees the sum, as in PyTorch.
  for (const Tensor& p : {x, w, b}) p.impl()->grad.reset();
  sum(unrolled({x, w, b})).backward();
  const std::vector<real> once = w.grad().to_vector();
  sum(unrolled({x, w, b})).backward();
  const Tensor held = w.grad();
  const uint32_t version = held.version();
  sum(unrolled({x, w, b})).backward();
  CHECK(held.is_same(w.grad()));
  CHECK(held.version() > version);  // each addition is an in-place change of the .grad
  for (size_t i = 0; i < once.size(); ++i)
    CHECK(std::abs(double(w.grad().data()[i]) - 3 * double(once[i])) <= 1e-5);
  // x + x through linear twice: both uses reach x (the second adds into the first).
  Tensor v = ag::testing::leaf({2, 5}, 64);
  sum(nn::linear(v, w) + nn::linear(v, w)).backward();
  const Tensor twice = v.grad();
  v.impl()->grad.reset();
  (sum(nn::linear(v, w)) * real(2)).backward();
  CHECK(ag::testing::max_abs_diff(twice, v.grad()) <= 1e-5);
}

TEST_CASE("modes/softmax, log_softmax [F0.2], layer_norm [F3.6], linear, mul, cross_entropy") {
  const real inf = std::numeric_limits<real>::infinity();
  Tensor x = ag::testing::leaf({3, 4, 6}, 51);
  {
    NoGradGuard no_grad;
    x.data()[2] = -inf;                                      // a masked element
    for (int64_t k = 0; k < 6; ++k) x.data()[6 + k] = -inf;  // a fully masked row
  }
  Tensor y = ag::testing::leaf({3, 4, 6}, 52);
  for (int64_t dim : {-1, 1, 0}) {
    INFO("softmax over dim " << dim);
    check_op_modes_agree([dim](const std::vector<Tensor>& in) { return softmax(in[0], dim); }, {y});
    check_op_modes_agree([dim](const std::vector<Tensor>& in) { return log_softmax(in[0], dim); },
                         {y});
  }
  // with -inf: values (zeros for the masked row) and gradients agree; no gradcheck across -inf
  for (bool plain : {false, true}) {
    ReferenceModeGuard mode(plain);
    Tensor s = softmax(x, -1);
    for (int64_t k = 0; k < 6; ++k) CHECK(s.data()[6 + k] == 0);
    CHECK(s.data()[2] == 0);
  }
  Tensor gamma = ag::testing::leaf({6}, 53), beta = ag::testing::leaf({6}, 54);
  check_op_modes_agree(
      [](const std::vector<Tensor>& in) { return nn::layer_norm(in[0], in[1], in[2]); },
      {y, gamma, beta}, 1e-4);
  check_op_modes_agree([](const std::vector<Tensor>& in) { return nn::layer_norm(in[0], {}, {}); },
                       {y}, 1e-4);
  Tensor w = ag::testing::leaf({5, 6}, 55), b = ag::testing::leaf({5}, 56);
  check_op_modes_agree(
      [](const std::vector<Tensor>& in) { return nn::linear(in[0], in[1], in[2]); }, {y, w, b});
  check_op_modes_agree([](const std::vector<Tensor>& in) { return nn::linear(in[0], in[1]); },
                       {ag::testing::leaf({6}, 57), w});
  check_op_modes_agree([](const std::vector<Tensor>& in) { return in[0] * in[1]; },
                       {y, ag::testing::leaf({4, 1}, 58)});
  Tensor targets = from_vector({0, 5, 2, -100, 1, 3, 4, 4, 0, 1, 2, 3}, {3, 4});
  for (auto reduction : {nn::Reduction::Mean, nn::Reduction::Sum, nn::Reduction::None}) {
    check_op_modes_agree(
        [&](const std::vector<Tensor>& in) {
          return nn::cross_entropy(in[0], targets, -100, reduction);
        },
        {y});
  }
  check_same_error([&] { nn::linear(y, b); }, {"linear", "weight must be 2-D"});
  check_same_error([&] { nn::layer_norm(y, ones({4}), Tensor()); }, {"layer_norm", "weight"});
  check_same_error([&] { nn::cross_entropy(y, zeros({3})); }, {"cross_entropy", "targets (3)"});
  check_same_error([&] { softmax(y, 3); }, {"softmax", "dim 3"});
}

TEST_CASE("modes/linear_relu: Linear then ReLU as one op, a few inputs and many, any batch dims") {
  // in_features 1 - 4 take the one-pass loops, 6 the GEMM; out_features 5 and
  // 37 (two chunks of 16 floats or eight of 4 doubles, and a remainder).
  for (int64_t in : {1, 2, 3, 4, 6}) {
    for (int64_t out : {5, 37}) {
      INFO("in_features " << in << ", out_features " << out);
      const uint64_t seed = 100 * uint64_t(in) + uint64_t(out);
      Tensor x = ag::testing::leaf({2, 3, in}, seed), w = ag::testing::leaf({out, in}, seed + 1);
      Tensor b = ag::testing::leaf({out}, seed + 2);
      check_op_modes_agree(
          [](const std::vector<Tensor>& v) { return nn::linear_relu(v[0], v[1], v[2]); },
          {x, w, b});
      check_op_modes_agree([](const std::vector<Tensor>& v) { return nn::linear_relu(v[0], v[1]); },
                           {ag::testing::leaf({in}, seed + 3), w});
      // x without a gradient (a model's input data), and a layer used twice, so
      // that the second use adds into the gradients the first gathered
      const Tensor data = x.detach();
      check_op_modes_agree(
          [&](const std::vector<Tensor>& v) {
            return nn::linear_relu(data, v[0], v[1]) + nn::linear_relu(v[2], v[0], v[1]);
          },
          {w, b, ag::testing::leaf({2, 3, in}, seed + 4)});
    }
  }
}

TEST_CASE("linear_relu: max(x W^T + b, 0) by hand, zero rows, and NaN kept as relu keeps it") {
  for (bool plain : {false, true}) {
    INFO((plain ? "reference" : "fast") << " mode");
    ReferenceModeGuard mode(plain);
    // x = (1, 2): x W^T + b = (1*1 + 2*0 + 0.5, 1*(-1) + 2*(-1) + 1, 1*2 + 2*1 - 5) = (1.5, -2, -1)
    Tensor w = from_vector({1, 0, -1, -1, 2, 1}, {3, 2});
    Tensor b = from_vector({0.5, 1, -5}, {3});
    Tensor x = from_vector({1, 2}, {1, 2});
    w.requires_grad_();
    b.requires_grad_();
    Tensor y = nn::linear_relu(x, w, b);
    check_values(y, {1.5, 0, 0});
    sum(y).backward();
    check_values(w.grad(), {1, 2, 0, 0, 0, 0});  // only the unit above 0 passes g on
    check_values(b.grad(), {1, 0, 0});
    CHECK(nn::linear_relu(zeros({0, 2}), w, b).shape() == Shape{0, 3});
    Tensor nan_x = from_vector({std::numeric_limits<real>::quiet_NaN(), 0}, {1, 2});
    Tensor with_nan = nn::linear_relu(nan_x, w, b);
    for (int64_t j = 0; j < 3; ++j) CHECK(std::isnan(with_nan.data()[j]));
    check_same_error(
        [&] {
          nn::linear_relu(zeros({4, 3}), w, b);
        },
        {"linear: input (4,3) does not end in in_features = 2"});
  }
}

TEST_CASE("modes/layer_norm: four rows at a time and one, whole Lanes of features and a tail") {
  // fast mode takes rows four at a time, then the rest one at a time, and the
  // features a Lanes (16 floats, 8 doubles) at a time, then the last few alone
  for (int64_t d : {16, 21, 37}) {
    for (int64_t rows : {1, 4, 5, 7}) {
      INFO("rows " << rows << ", features " << d);
      const uint64_t seed = 1000 + 10 * uint64_t(d) + uint64_t(rows);
      Tensor x = ag::testing::leaf({rows, d}, seed), gamma = ag::testing::leaf({d}, seed + 1);
      Tensor beta = ag::testing::leaf({d}, seed + 2);
      check_op_modes_agree(
          [](const std::vector<Tensor>& in) { return nn::layer_norm(in[0], in[1], in[2]); },
          {x, gamma, beta}, 1e-4);
      check_op_modes_agree(
          [](const std::vector<Tensor>& in) { return nn::layer_norm(in[0], in[1], {}); },
          {x, gamma}, 1e-4);
      check_op_modes_agree(
          [](const std::vector<Tensor>& in) { return nn::layer_norm(in[0], {}, {}); }, {x}, 1e-4);
    }
  }
  // x also reaching the loss another way (a pre-norm block's residual): fast
  // mode adds dL/dx to x's gradient from that way, whichever the engine meets
  // first. The loss weights each output by its own factor.
  {
    Tensor x = ag::testing::leaf({5, 21}, 90), gamma = ag::testing::leaf({21}, 91);
    Tensor c = ag::testing::leaf({5, 21}, 92).detach();
    check_op_modes_agree(
        [c](const std::vector<Tensor>& in) {
          return in[0] * c + nn::layer_norm(in[0], in[1], {});
        },
        {x, gamma}, 1e-4);
    check_op_modes_agree(
        [c](const std::vector<Tensor>& in) {
          return nn::layer_norm(in[0], in[1], {}) + in[0] * c;
        },
        {x, gamma}, 1e-4);
  }
  // dL/dx is written over dL/dy only when nothing else holds it: a retained
  // .grad of y stays dL/dy
  for (bool plain : {false, true}) {
    ReferenceModeGuard mode(plain);
    Tensor x = ag::testing::leaf({5, 21}, 77);
    Tensor y = nn::layer_norm(x, Tensor(), Tensor());
    y.retain_grad();
    Generator gen(78);
    const Tensor c = randn({5, 21}, gen);
    sum(y * c).backward();
    CHECK(ag::testing::max_abs_diff(y.grad(), c) == 0);
  }
}

TEST_CASE(
    "modes/MultiHeadAttention: the softmax's backward leaves retained weights' dL/dW as it was") {
  // fast mode writes dL/dscores over dL/dweights when only the engine holds it
  manual_seed(79);
  nn::MultiHeadAttention attention(32, 2);
  Tensor x = ag::testing::leaf({2, 20, 32}, 80);
  for (bool plain : {false, true}) {
    ReferenceModeGuard mode(plain);
    nn::AttentionOutput out = attention.forward(x, x, x, nn::causal_mask(20));
    out.weights.retain_grad();
    Generator gen(81);
    const Tensor c = randn(out.weights.shape(), gen);
    sum(out.weights * c).backward();  // the weights alone: dL/dW = c
    CHECK(ag::testing::max_abs_diff(out.weights.grad(), c) == 0);
  }
}

TEST_CASE("modes/linear_plus_residual: residual + x W^T + b as one op, with and without bias") {
  Tensor x = ag::testing::leaf({2, 3, 6}, 90), w = ag::testing::leaf({5, 6}, 91);
  Tensor b = ag::testing::leaf({5}, 92), r = ag::testing::leaf({2, 3, 5}, 93);
  check_op_modes_agree(
      [](const std::vector<Tensor>& v) { return nn::linear_plus_residual(v[0], v[1], v[2], v[3]); },
      {x, w, b, r});
  check_op_modes_agree(
      [](const std::vector<Tensor>& v) { return nn::linear_plus_residual(v[0], v[1], {}, v[2]); },
      {x, w, r});
  // one row (a 1-D input), and the input as its own residual (x + x W^T + b)
  check_op_modes_agree(
      [](const std::vector<Tensor>& v) { return nn::linear_plus_residual(v[0], v[1], v[2], v[3]); },
      {ag::testing::leaf({6}, 94), w, b, ag::testing::leaf({5}, 95)});
  Tensor square = ag::testing::leaf({5, 5}, 96);
  check_op_modes_agree(
      [](const std::vector<Tensor>& v) { return nn::linear_plus_residual(v[0], v[1], v[2], v[0]); },
      {ag::testing::leaf({4, 5}, 97), square, b});
  check_same_error(
      [&] {
        nn::linear_plus_residual(x, w, b, ag::testing::leaf({2, 3, 4}, 98));
      },
      {"linear_plus_residual: residual (2,3,4)", "output's shape (2,3,5)"});
  check_same_error([&] { nn::linear_plus_residual(x, w, b, Tensor()); },
                   {"linear_plus_residual: residual", "output's shape (2,3,5)"});
  check_same_error([&] { nn::linear_plus_residual(x, b, b, r); }, {"linear", "weight must be 2-D"});
}

TEST_CASE("linear_plus_residual: y = r + x W^T + b by hand, and its gradients") {
  for (bool plain : {false, true}) {
    INFO((plain ? "reference" : "fast") << " mode");
    ReferenceModeGuard mode(plain);
    // x W^T + b = (1.5, -2, -1) (as linear_relu's test); r = (10, 20, 30)
    Tensor w = from_vector({1, 0, -1, -1, 2, 1}, {3, 2}), b = from_vector({0.5, 1, -5}, {3});
    Tensor x = from_vector({1, 2}, {1, 2}), r = from_vector({10, 20, 30}, {1, 3});
    for (Tensor* t : {&w, &b, &x, &r}) t->requires_grad_();
    Tensor y = nn::linear_plus_residual(x, w, b, r);
    check_values(y, {11.5, 18, 29});
    sum(y * from_vector({1, 2, 3}, {1, 3})).backward();
    check_values(r.grad(), {1, 2, 3});
    check_values(b.grad(), {1, 2, 3});
    check_values(w.grad(), {1, 2, 2, 4, 3, 6});      // g_j x_p
    check_values(x.grad(), {1 - 2 + 6, 0 - 2 + 3});  // sum_j g_j W_jp
  }
}

// Each tensor of `a` equal to the same one of `b` to float rounding (1e-12 in
// the double flavor).
void check_each_close(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("tensor " << i);
    CHECK(ag::testing::max_abs_diff(a[i], b[i]) <= (ag::testing::is_double ? 1e-12 : 1e-5));
  }
}

TEST_CASE("modes/forward_plus_residual: MultiHeadAttention's and FeedForward's are r + forward") {
  manual_seed(99);
  nn::MultiHeadAttention attention(32, 4);
  nn::FeedForward ffn(32, 64);
  Tensor x = ag::testing::leaf({2, 5, 32}, 100), r = ag::testing::leaf({2, 5, 32}, 101);
  const Tensor causal = nn::causal_mask(5);
  for (bool plain : {false, true}) {
    INFO((plain ? "reference" : "fast") << " mode");
    ReferenceModeGuard mode(plain);
    // the sum made by the output projection against the sum written out: values
    // and the gradients of x and r, and of a parameter of each module
    auto run = [&](bool fused) {
      for (Tensor* t : {&x, &r}) t->set_grad(Tensor());
      attention.zero_grad();
      ffn.zero_grad();
      const nn::AttentionOutput a =
          fused ? attention.forward_plus_residual(r, x, x, x, causal)
                : nn::AttentionOutput{r + attention.forward(x, x, x, causal).context, Tensor()};
      const Tensor y = fused ? ffn.forward_plus_residual(a.context, a.context)
                             : a.context + ffn.forward(a.context);
      Generator gen(102);
      sum(y * randn(y.shape(), gen)).backward();
      return std::vector<Tensor>{y.detach(), x.grad(), r.grad(), attention.out_proj->weight.grad(),
                                 ffn.linear2->bias.grad()};
    };
    const std::vector<Tensor> fused = run(true), written = run(false);
    check_each_close(fused, written);
  }
  check_same_error(
      [&] {
        attention.forward_plus_residual(ag::testing::leaf({2, 4, 32}, 103), x, x, x);
      },
      {"MultiHeadAttention::forward_plus_residual: residual (2,4,32)", "(2,5,32)"});
  check_same_error(
      [&] {
        ffn.forward_plus_residual(ag::testing::leaf({5, 32}, 104), x);
      },
      {"FeedForward::forward_plus_residual: residual (5,32)", "input (2,5,32)"});
  check_same_error(
      [&] {
        ffn.forward_plus_residual(x, ag::testing::leaf({2, 5, 31}, 105));
      },
      {"FeedForward::forward_plus_residual: input (2,5,31)", "d_model = 32"});
}

// A FeedForward whose forward is not FeedForward's: the layer must call it.
struct DoubledFeedForward : nn::FeedForward {
  using nn::FeedForward::FeedForward;
  Tensor forward(const Tensor& x) override { return nn::FeedForward::forward(x) * real(2); }
};

TEST_CASE(
    "modes/TransformerEncoderLayer: residual sums made by the products equal the sums written "
    "out") {
  // Without active dropout the layer's attention and FFN add their outputs to
  // the residual themselves; the sums written out with the same modules (as
  // the layer does with dropout in training) must give the same values and
  // gradients, pre-norm and post-norm, in both modes.
  // Cases: eval with dropout 0.1; training with dropout 0 and a key padding
  // mask; a FeedForward subclass with its own forward (the layer then writes
  // the sums out itself, and must call that forward).
  for (int setting = 0; setting < 6; ++setting) {
    const bool norm_first = setting % 2 == 0;
    const int kind = setting / 2;
    INFO("norm_first " << norm_first << ", case " << kind);
    manual_seed(106);
    nn::TransformerEncoderLayer layer(16, 2, 32, /*dropout=*/kind == 1 ? 0 : 0.1, norm_first);
    if (kind != 1) layer.eval();
    if (kind == 2) layer.feed_forward = std::make_shared<DoubledFeedForward>(16, 32);
    Tensor x = ag::testing::leaf({2, 6, 16}, 107);
    const Tensor causal = nn::causal_mask(6);
    const Tensor padding =
        kind == 1 ? from_vector({0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 1}, {2, 6}) : Tensor();
    for (bool plain : {false, true}) {
      INFO((plain ? "reference" : "fast") << " mode");
      ReferenceModeGuard mode(plain);
      auto run = [&](bool written) {
        x.set_grad(Tensor());
        layer.zero_grad();
        Tensor y;
        auto attend = [&](const Tensor& q) {
          return layer.self_attn->forward(q, q, q, causal, padding).context;
        };
        if (!written) {
          y = layer.forward(x, causal, padding);
        } else if (norm_first) {
          const Tensor h = x + attend(layer.norm1->forward(x));
          y = h + layer.feed_forward->forward(layer.norm2->forward(h));
        } else {
          const Tensor h = layer.norm1->forward(x + attend(x));
          y = layer.norm2->forward(h + layer.feed_forward->forward(h));
        }
        Generator gen(108);
        sum(y * randn(y.shape(), gen)).backward();
        return std::vector<Tensor>{y.detach(), x.grad(), layer.self_attn->out_proj->bias.grad(),
                                   layer.feed_forward->linear2->weight.grad(),
                                   layer.norm1->weight.grad()};
      };
      const std::vector<Tensor> fused = run(false), written = run(true);
      check_each_close(fused, written);
    }
  }
}

TEST_CASE("linear_relu: ReLU's gradient leaves a retained dL/dy as it was") {
  // 6 inputs: the GEMM path, whose backward masks g in place when only the
  // engine holds it; a retained .grad of y holds it too
  for (bool plain : {false, true}) {
    INFO((plain ? "reference" : "fast") << " mode");
    ReferenceModeGuard mode(plain);
    Tensor x = ag::testing::leaf({4, 6}, 71), w = ag::testing::leaf({5, 6}, 72);
    Tensor b = ag::testing::leaf({5}, 73);
    Tensor y = nn::linear_relu(x, w, b);
    y.retain_grad();
    Generator gen(74);
    const Tensor c = randn({4, 5}, gen);
    sum(y * c).backward();
    CHECK(ag::testing::max_abs_diff(y.grad(), c) == 0);
    // dL/db = sum over rows of c where y > 0
    for (int64_t j = 0; j < 5; ++j) {
      real expected = 0;
      for (int64_t i = 0; i < 4; ++i)
        if (y.data()[i * 5 + j] > 0) expected += c.data()[i * 5 + j];
      CHECK(std::abs(b.grad().data()[j] - expected) <= 1e-5);
    }
  }
}

// A Linear whose forward is not linear(): Sequential must call it, not fuse it.
struct DoubledLinear : nn::Linear {
  using nn::Linear::Linear;
  Tensor forward(const Tensor& x) override { return nn::Linear::forward(x) * real(2); }
};

// The name of each op on the path back from `t` through first inputs.
std::vector<std::string> op_names(const Tensor& t) {
  std::vector<std::string> names;
  for (std::shared_ptr<Node> node = t.grad_fn(); node;) {
    names.push_back(node->name);
    std::shared_ptr<Node> next;
    for (const Node::Edge& input : node->inputs)
      if (input.tensor.defined() && input.tensor.grad_fn()) {
        next = input.tensor.grad_fn();
        break;
      }
    node = next;
  }
  return names;
}

// Runs `module` on x in fast mode and in reference mode, backward from a
// random weighting of its output, and checks that the two agree on the output,
// x's gradient and every parameter's gradient; in double, that each mode's
// gradients pass check_module_gradients too.
void check_module_modes_agree(nn::UnaryModule& module, Tensor& x) {
  std::vector<std::vector<Tensor>> results;
  for (bool plain : {false, true}) {
    ReferenceModeGuard mode(plain);
    module.zero_grad();
    x.impl()->grad.reset();
    Tensor y = module.forward(x);
    Generator gen(3);
    sum(y * randn(y.shape(), gen)).backward();
    std::vector<Tensor> r{y.detach(), x.grad()};
    for (const Tensor& p : module.parameters()) r.push_back(p.grad().detach().clone());
    results.push_back(r);
    if constexpr (ag::testing::is_double) {
      INFO((plain ? "reference" : "fast") << " mode");
      ag::testing::check_module_gradients(module, [&] { return sum(module.forward(x)); }, {x});
    }
  }
  check_each_close(results[0], results[1]);
}

TEST_CASE("modes/Sequential runs a Linear followed by a ReLU as linear_relu, and only that pair") {
  manual_seed(7);
  nn::Sequential model({std::make_shared<nn::Linear>(2, 20), std::make_shared<nn::ReLU>(),
                        std::make_shared<nn::Linear>(20, 6), std::make_shared<nn::ReLU>(),
                        std::make_shared<nn::Linear>(6, 3)});
  Tensor x = ag::testing::leaf({10, 2}, 71);
  check_module_modes_agree(model, x);
  {
    ReferenceModeGuard fast(false);
    Tensor y = model.forward(x);  // fast mode: two fused pairs, then the last Linear
    const std::vector<std::string> names = op_names(y);
    CHECK(std::count(names.begin(), names.end(), std::string("LinearReluBackward")) == 2);
    CHECK(std::count(names.begin(), names.end(), std::string("ReluBackward")) == 0);
  }
  // A subclass of Linear with its own forward, or a ReLU that does not follow a
  // Linear, runs as written.
  manual_seed(8);
  auto doubled = std::make_shared<DoubledLinear>(2, 4);
  nn::Sequential subclassed({doubled, std::make_shared<nn::ReLU>()});
  const Tensor y = subclassed.forward(x);
  CHECK(ag::testing::max_abs_diff(
            y, relu(nn::linear(x, doubled->weight, doubled->bias) * real(2))) == 0);
  CHECK(op_names(y).front() == "ReluBackward");
  check_same_error(
      [&] {
        model.forward(zeros({4, 5}));
      },
      {"linear: input (4,5) does not end in in_features = 2"});
}

// The name of every op in the graph that made `t`.
std::vector<std::string> all_op_names(const Tensor& t) {
  std::vector<std::string> names;
  std::vector<std::shared_ptr<Node>> to_visit{t.grad_fn()}, seen;
  while (!to_visit.empty()) {
    std::shared_ptr<Node> node = to_visit.back();
    to_visit.pop_back();
    if (!node || std::find(seen.begin(), seen.end(), node) != seen.end()) continue;
    seen.push_back(node);
    names.push_back(node->name);
    for (const Node::Edge& input : node->inputs)
      if (input.tensor.defined()) to_visit.push_back(input.tensor.grad_fn());
  }
  return names;
}

TEST_CASE("modes/FeedForward runs its first Linear and the ReLU as linear_relu") {
  manual_seed(9);
  nn::FeedForward ff(8, 32, 0);
  Tensor x = ag::testing::leaf({2, 5, 8}, 72);  // (batch, positions, d_model)
  check_module_modes_agree(ff, x);
  for (bool plain : {false, true}) {
    ReferenceModeGuard mode(plain);
    const std::vector<std::string> names = all_op_names(ff.forward(x));
    CHECK(std::count(names.begin(), names.end(), std::string("LinearReluBackward")) ==
          (plain ? 0 : 1));
    CHECK(std::count(names.begin(), names.end(), std::string("ReluBackward")) == (plain ? 1 : 0));
  }
  check_same_error(
      [&] {
        ff.forward(zeros({4, 5}));
      },
      {"FeedForward: input (4,5) must be (..., d_model = 8)"});
  // linear1 swapped for a subclass with its own forward: called as written
  auto doubled = std::make_shared<DoubledLinear>(8, 32);
  ff.linear1 = doubled;
  ReferenceModeGuard fast(false);
  const Tensor y = ff.forward(x);
  const Tensor expected = nn::linear(relu(nn::linear(x, doubled->weight, doubled->bias) * real(2)),
                                     ff.linear2->weight, ff.linear2->bias);
  CHECK(ag::testing::max_abs_diff(y, expected) == 0);
}

TEST_CASE("modes/cross_entropy over few classes (one flat loop of exps) and many agree") {
  const real inf = std::numeric_limits<real>::infinity();
  for (int64_t classes : {1, 2, 3, 7, 8, 9}) {
    INFO(classes << " classes");
    Tensor logits = ag::testing::leaf({5, classes}, 80 + uint64_t(classes));
    std::vector<real> labels;
    for (int64_t r = 0; r < 5; ++r) labels.push_back(real((r * 2) % classes));
    labels[3] = -100;  // ignored
    const Tensor targets = from_vector(labels, {5});
    if (classes == 1) {  // one class: softmax is 1, the loss 0 and its gradient 0, whatever x
      for (bool plain : {false, true}) {
        ReferenceModeGuard mode(plain);
        logits.impl()->grad.reset();
        Tensor loss = nn::cross_entropy(logits, targets, -100, nn::Reduction::Sum);
        CHECK(loss.item() == 0);
        loss.backward();
        check_values(logits.grad(), {0, 0, 0, 0, 0});
      }
    } else {
      for (auto reduction : {nn::Reduction::Mean, nn::Reduction::Sum, nn::Reduction::None})
        check_op_modes_agree(
            [&](const std::vector<Tensor>& in) {
              return nn::cross_entropy(in[0], targets, -100, reduction);
            },
            {logits});
    }
    // a row with every class at -inf: its loss is inf in both modes
    Tensor blocked = logits.detach().clone();
    for (int64_t c = 0; c < classes; ++c) blocked.data()[c] = -inf;
    for (bool plain : {false, true}) {
      ReferenceModeGuard mode(plain);
      Tensor loss = nn::cross_entropy(blocked, targets, -100, nn::Reduction::None);
      CHECK(loss.data()[0] == inf);
      CHECK(loss.data()[3] == 0);
    }
  }
}

}  // namespace
