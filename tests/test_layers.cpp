// Layers I: Linear, Embedding, activations, Dropout and LayerNorm [F3.6]
// (Softmax [F0.2] and PointAttention are in test_point_attention.cpp). For
// each: output shapes, values computed by hand, gradcheck of the output with
// respect to the input and every parameter (double flavor), and the error
// messages of misuse.
#include <doctest/doctest.h>

#include <cmath>

#include "layers/nn.hpp"
#include "tests/helpers.hpp"
#include "tests/module_gradcheck.hpp"

using namespace ag;
using namespace ag::testing;

// --- Linear --------------------------------------------------------------------------

TEST_CASE("layers/linear: y = x W^T + b, computed by hand") {
  nn::Linear fc(3, 2);
  set_values(fc.weight, tensor({{1, 2, 3}, {-1, 0, 1}}));
  set_values(fc.bias, tensor({10, 20}));
  // row (1,1,1): (1+2+3+10, -1+0+1+20) = (16, 20); row (0,1,-1): (2-3+10, -1+20) = (9, 19)
  Tensor y = fc.forward(tensor({{1, 1, 1}, {0, 1, -1}}));
  check_shape(y, {2, 2});
  check_values(y, {16, 20, 9, 19});
  // A 1-D input is one row.
  Tensor y1 = fc.forward(tensor({1, 1, 1}));
  check_shape(y1, {2});
  check_values(y1, {16, 20});
}

TEST_CASE("layers/linear: any number of leading dims, and no bias") {
  manual_seed(1);
  nn::Linear fc(4, 5, /*bias=*/false);
  CHECK_FALSE(fc.bias.defined());
  CHECK(fc.named_parameters().size() == 1);
  Tensor x = randn({2, 3, 4});
  Tensor y = fc.forward(x);
  check_shape(y, {2, 3, 5});
  // Same numbers as the composed x W^T.
  Tensor expected = matmul(x, transpose(fc.weight, 0, 1));
  std::vector<double> values(expected.data(), expected.data() + expected.numel());
  check_values(y, values);
}

TEST_CASE(
    "layers/linear: PyTorch's default init U(-1/sqrt(in), 1/sqrt(in)), same seed same numbers") {
  manual_seed(42);
  nn::Linear a(100, 50);
  manual_seed(42);
  nn::Linear b(100, 50);
  CHECK(a.weight.to_vector() == b.weight.to_vector());
  CHECK(a.bias.to_vector() == b.bias.to_vector());
  const double bound = 1 / std::sqrt(100.0);
  double sum = 0, sum_sq = 0;
  for (real w : a.weight.to_vector()) {
    CHECK(std::abs(w) <= bound);
    sum += w;
    sum_sq += double(w) * w;
  }
  for (real v : a.bias.to_vector()) CHECK(std::abs(v) <= bound);
  // U(-b, b) has mean 0 and variance b^2/3; 5000 draws: within a few standard errors.
  const double n = 5000, mean = sum / n, var = sum_sq / n - mean * mean;
  CHECK(std::abs(mean) < 0.005);
  CHECK(var == doctest::Approx(bound * bound / 3).epsilon(0.05));
}

TEST_CASE("layers/linear: errors name the layer and the shapes") {
  nn::Linear fc(3, 2);
  check_error(
      [&] {
        (void)fc.forward(zeros({4, 5}));
      },
      {"linear:", "(4,5)", "in_features = 3", "'weight' (2,3)"});
  check_error(
      [&] {
        (void)nn::linear(zeros({2, 3}), zeros({2, 3}), zeros({3}));
      },
      {"linear:", "bias (3)", "(2)"});
  check_error([] { nn::Linear bad(0, 2); }, {"Linear:", "positive", "0"});
}

#ifdef AG_USE_DOUBLE
TEST_CASE("layers/linear: gradcheck of the output w.r.t. input, weight and bias") {
  manual_seed(2);
  nn::Linear fc(4, 3);
  for (const Shape& shape : {Shape{4}, Shape{5, 4}, Shape{2, 3, 4}}) {
    Tensor x = leaf(shape, 3);
    check_gradients([&](const std::vector<Tensor>& in) { return nn::linear(in[0], in[1], in[2]); },
                    {x, fc.weight, fc.bias});
  }
  nn::Linear no_bias(4, 3, false);
  check_gradients([&](const std::vector<Tensor>& in) { return nn::linear(in[0], in[1]); },
                  {leaf({3, 4}, 4), no_bias.weight});
  // The module, through its own weight and bias.
  Tensor x = leaf({2, 3, 4}, 5);
  check_module_gradients(fc, [&] { return fc.forward(x); }, {x});
  check_module_gradients(no_bias, [&] { return no_bias.forward(x); }, {x});
}
#endif

// --- Embedding -----------------------------------------------------------------------

TEST_CASE("layers/embedding [F2.8]: rows of the table, any index shape") {
  nn::Embedding emb(4, 2);
  set_values(emb.weight, tensor({{0, 1}, {10, 11}, {20, 21}, {30, 31}}));
  Tensor rows = emb.forward(std::vector<int64_t>{3, 0, 3});
  check_shape(rows, {3, 2});
  check_values(rows, {30, 31, 0, 1, 30, 31});
  // {0} is an index list, not a null tensor.
  check_values(emb.forward({0}), {0, 1});
  Tensor batch = emb.forward(tensor({{1, 2, 3}, {0, 0, 1}}));  // (B,T) -> (B,T,D)
  check_shape(batch, {2, 3, 2});
  check_values(batch, {10, 11, 20, 21, 30, 31, 0, 1, 0, 1, 10, 11});
}

TEST_CASE("layers/embedding: a row used twice gets the sum of both gradients") {
  nn::Embedding emb(3, 2);
  Tensor out = emb.forward(std::vector<int64_t>{2, 0, 2});
  sum(out * tensor({{1, 2}, {3, 4}, {5, 6}})).backward();
  check_values(emb.weight.grad(), {3, 4, 0, 0, 1 + 5, 2 + 6});
}

TEST_CASE("layers/embedding: init N(0,1), seeded") {
  manual_seed(7);
  nn::Embedding emb(200, 50);
  double sum = 0, sum_sq = 0;
  for (real w : emb.weight.to_vector()) {
    sum += w;
    sum_sq += double(w) * w;
  }
  const double n = 10000, mean = sum / n;
  CHECK(std::abs(mean) < 0.04);
  CHECK(std::sqrt(sum_sq / n - mean * mean) == doctest::Approx(1).epsilon(0.03));
  manual_seed(7);
  nn::Embedding again(200, 50);
  CHECK(again.weight.to_vector() == emb.weight.to_vector());
}

TEST_CASE("layers/embedding: out-of-range and non-integer indices are errors") {
  nn::Embedding emb(5, 2);
  check_error(
      [&] {
        (void)emb.forward(std::vector<int64_t>{1, 5});
      },
      {"Embedding:", "index 5", "position 1", "5 embeddings", "0..4"});
  check_error([&] { (void)emb.forward(tensor({0, -1})); }, {"Embedding:", "index -1"});
  check_error([&] { (void)emb.forward(tensor({0.5})); }, {"Embedding:", "not an integer"});
}

#ifdef AG_USE_DOUBLE
TEST_CASE("layers/embedding: gradcheck w.r.t. the table") {
  // The indices are not differentiable: the table is the only input. Row 3 is
  // used twice, row 2 never (its gradient must be 0).
  manual_seed(6);
  nn::Embedding emb(4, 3);
  Tensor ids = tensor({{1, 3}, {3, 0}});
  check_module_gradients(emb, [&] { return emb.forward(ids); });
  check_module_gradients(emb, [&] { return emb.forward(std::vector<int64_t>{2, 2, 0}); });
}
#endif

// --- activations and Softmax [F0.2] ----------------------------------------------------

TEST_CASE("layers/activation: ReLU, Tanh, Sigmoid values") {
  Tensor x = tensor({-2, 0, 1.5});
  check_values(nn::ReLU().forward(x), {0, 0, 1.5});
  check_values(nn::Tanh().forward(x), {std::tanh(-2.0), 0, std::tanh(1.5)});
  check_values(nn::Sigmoid().forward(x), {1 / (1 + std::exp(2.0)), 0.5, 1 / (1 + std::exp(-1.5))});
}

#ifdef AG_USE_DOUBLE
TEST_CASE("layers/activation: gradcheck of ReLU, Tanh, Sigmoid, Softmax [F0.2]") {
  Tensor x = leaf({3, 4}, 5);
  nn::ReLU relu_layer;
  nn::Tanh tanh_layer;
  nn::Sigmoid sigmoid_layer;
  nn::Softmax softmax_layer(-1);
  for (nn::UnaryModule* layer :
       std::vector<nn::UnaryModule*>{&relu_layer, &tanh_layer, &sigmoid_layer, &softmax_layer})
    check_gradients([&](const std::vector<Tensor>& in) { return layer->forward(in[0]); }, {x});
}
#endif

// --- Dropout -------------------------------------------------------------------------

TEST_CASE("layers/dropout: inverted dropout in training, identity in eval") {
  manual_seed(3);
  nn::Dropout drop(0.25);
  Tensor x = ones({100, 100});
  Tensor y = drop.forward(x);
  int zeros_seen = 0;
  for (real v : y.to_vector()) {
    if (v == 0)
      ++zeros_seen;
    else
      CHECK(v == doctest::Approx(1 / 0.75));  // survivors scaled by 1/(1-p)
  }
  CHECK(zeros_seen / 10000.0 == doctest::Approx(0.25).epsilon(0.08));
  // Same seed, same mask.
  manual_seed(3);
  CHECK(drop.forward(x).to_vector() == y.to_vector());
  drop.eval();
  CHECK(drop.forward(x).is_same(x));
  CHECK(nn::dropout(x, 0, /*training=*/true).is_same(x));
  CHECK(sum(nn::dropout(x, 1, true)).item() == 0);
}

TEST_CASE("layers/dropout: the gradient is the mask scaled by 1/(1-p)") {
  manual_seed(4);
  Tensor x = randn({20});
  x.requires_grad_();
  Tensor y = nn::dropout(x, 0.5, true);
  sum(y).backward();
  for (int64_t i = 0; i < 20; ++i) {
    const double kept = y.data()[i] != 0 ? 2.0 : 0.0;
    CHECK(x.grad().data()[i] == doctest::Approx(kept));
  }
}

#ifdef AG_USE_DOUBLE
TEST_CASE("layers/dropout: gradcheck of the output w.r.t. the input, in training and eval") {
  nn::Dropout drop(0.3);
  Tensor x = leaf({4, 5}, 6);
  // Reseeding before each forward draws the same mask every time, so the
  // finite differences see one fixed function of x.
  check_gradients(
      [&](const std::vector<Tensor>& in) {
        manual_seed(21);
        return drop.forward(in[0]);
      },
      {x});
  drop.eval();
  check_gradients([&](const std::vector<Tensor>& in) { return drop.forward(in[0]); }, {x});
}
#endif

TEST_CASE("layers/dropout: p outside [0, 1] is an error") {
  check_error([] { nn::Dropout d(1.5); }, {"Dropout:", "[0, 1]", "1.5"});
  check_error([] { (void)nn::dropout(ones({2}), -0.1, true); }, {"Dropout:", "-0.1"});
}

// --- LayerNorm [F3.6] -------------------------------------------------------------------

TEST_CASE("layers/layer_norm [F3.6]: LN(x) = gamma (x - mu)/sqrt(var + eps) + beta, by hand") {
  nn::LayerNorm norm(4);
  check_values(norm.weight, {1, 1, 1, 1});
  check_values(norm.bias, {0, 0, 0, 0});
  // Row (1,2,3,4): mu = 2.5, var = (2.25+0.25+0.25+2.25)/4 = 1.25.
  const double s = 1 / std::sqrt(1.25 + 1e-5);
  check_values(norm.forward(tensor({1, 2, 3, 4})), {-1.5 * s, -0.5 * s, 0.5 * s, 1.5 * s});
  set_values(norm.weight, tensor({1, 2, 3, 4}));
  set_values(norm.bias, tensor({0, 0, 0, 1}));
  Tensor y = norm.forward(tensor({{1, 2, 3, 4}, {5, 5, 5, 5}}));
  // The constant row has var 0: x - mu = 0, so LN = beta.
  check_values(y, {-1.5 * s, -1 * s, 1.5 * s, 6 * s + 1, 0, 0, 0, 1});
}

TEST_CASE("layers/layer_norm [F3.6]: the fused op (fast mode) equals the composed ops (reference mode)") {
  manual_seed(8);
  Tensor gamma = randn({6}), beta = randn({6});
  gamma.requires_grad_();
  beta.requires_grad_();
  Tensor x = leaf({2, 3, 6}, 9);
  Tensor weights = randn({2, 3, 6});  // a fixed upstream gradient
  auto run = [&](bool reference) {
    ReferenceModeGuard mode(reference);
    for (Tensor* t : {&x, &gamma, &beta}) t->set_grad(Tensor());
    Tensor y = nn::layer_norm(x, gamma, beta, real(1e-5));
    sum(y * weights).backward();
    return std::vector<std::vector<real>>{y.to_vector(), x.grad().to_vector(),
                                          gamma.grad().to_vector(), beta.grad().to_vector()};
  };
  auto fused = run(false);
  auto composed = run(true);
  const double tolerance = testing::is_double ? 1e-10 : 1e-4;
  for (size_t k = 0; k < fused.size(); ++k) {
    INFO("output " << k << " (0: y, 1: dx, 2: dgamma, 3: dbeta)");
    std::vector<double> expected(composed[k].begin(), composed[k].end());
    check_values(from_vector(fused[k]), expected, tolerance);
  }
}

TEST_CASE("layers/layer_norm: errors") {
  nn::LayerNorm norm(4);
  check_error(
      [&] {
        (void)norm.forward(zeros({2, 3}));
      },
      {"LayerNorm:", "(2,3)", "normalized_shape = 4"});
  check_error(
      [] {
        (void)nn::layer_norm(zeros({2, 3}), ones({4}), Tensor());
      },
      {"layer_norm:", "weight", "(4)", "(3)"});
  check_error([] { nn::LayerNorm bad(0); }, {"LayerNorm:", "positive"});
}

#ifdef AG_USE_DOUBLE
TEST_CASE("layers/layer_norm [F3.6]: gradcheck w.r.t. input, gamma and beta") {
  manual_seed(10);
  Tensor gamma = randn({5}), beta = randn({5});
  gamma.requires_grad_();
  beta.requires_grad_();
  check_gradients([](const std::vector<Tensor>& in) { return nn::layer_norm(in[0], in[1], in[2]); },
                  {leaf({3, 5}, 11), gamma, beta});
  check_gradients(
      [](const std::vector<Tensor>& in) { return nn::layer_norm(in[0], Tensor(), Tensor()); },
      {leaf({2, 2, 5}, 12)});
  // The module, through its own gamma and beta (set away from 1 and 0).
  nn::LayerNorm norm(5);
  set_values(norm.weight, gamma);
  set_values(norm.bias, beta);
  Tensor x = leaf({2, 3, 5}, 13);
  check_module_gradients(norm, [&] { return norm.forward(x); }, {x});
}
#endif
