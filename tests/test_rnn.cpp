// RNN [F0.5], LSTM and attention over RNN states [F0.6] [F0.7]: values by
// hand, the seed's form as a special case, padding, 1,000-step backprop,
// PyTorch names, errors, and gradients by finite differences (double flavor).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>

#include "layers/nn.hpp"
#include "tests/helpers.hpp"
#include "tests/module_gradcheck.hpp"

using namespace ag;
using namespace ag::testing;

namespace {

double sigmoid_d(double x) { return 1 / (1 + std::exp(-x)); }

}  // namespace

TEST_CASE("layers/rnn [F0.5]: h_t = tanh(W_hh h_{t-1} + W_xh x_t + b), two steps by hand") {
  nn::RNN rnn(1, 2);
  set_values(rnn.weight_ih_l0, tensor({{1}, {-1}}));
  set_values(rnn.weight_hh_l0, tensor({{0.5, 0}, {0.25, -0.5}}));
  set_values(rnn.bias_ih_l0, tensor({0.1, 0}));
  set_values(rnn.bias_hh_l0, tensor({0, 0.2}));
  nn::SequenceOutput out = rnn.forward(tensor({{{2}, {-1}}}));  // B=1, T=2, D=1
  const double h1a = std::tanh(2 + 0.1), h1b = std::tanh(-2 + 0.2);
  const double h2a = std::tanh(0.5 * h1a - 1 + 0.1);
  const double h2b = std::tanh(0.25 * h1a - 0.5 * h1b + 1 + 0.2);
  check_shape(out.output, {1, 2, 2});
  check_values(out.output, {h1a, h1b, h2a, h2b});
  check_values(out.h_n, {h2a, h2b});
  CHECK_FALSE(out.c_n.defined());
}

TEST_CASE("layers/rnn [F0.5]: the seed's form h_t = tanh(W h_{t-1} + b + x_t) is W_xh = I") {
  Generator gen(1);
  const int64_t B = 2, T = 4, H = 3;
  nn::RNN rnn(H, H);
  set_values(rnn.weight_ih_l0, tensor({{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}));  // W_xh = I
  set_values(rnn.bias_ih_l0, zeros({H}));
  Tensor x = randn({B, T, H}, gen);
  nn::SequenceOutput out = rnn.forward(x);
  // The seed's recurrence, written out with plain loops: W = weight_hh, b = bias_hh.
  for (int64_t b = 0; b < B; ++b) {
    std::vector<double> h(H, 0);
    for (int64_t t = 0; t < T; ++t) {
      std::vector<double> next(H);
      for (int64_t i = 0; i < H; ++i) {
        double z = rnn.bias_hh_l0.at({i}) + x.at({b, t, i});
        for (int64_t j = 0; j < H; ++j) z += rnn.weight_hh_l0.at({i, j}) * h[j];
        next[i] = std::tanh(z);
      }
      h = next;
      for (int64_t i = 0; i < H; ++i)
        CHECK(out.output.at({b, t, i}) == doctest::Approx(h[i]).epsilon(testing::tol));
    }
  }
}

TEST_CASE("layers/rnn [F0.5]: RNN is RNNCell step by step; past its length a state stays put") {
  Generator gen(2);
  nn::RNN rnn(3, 4);
  nn::RNNCell cell(3, 4);
  for (auto [from, to] : {std::pair{&rnn.weight_ih_l0, &cell.weight_ih},
                          {&rnn.weight_hh_l0, &cell.weight_hh},
                          {&rnn.bias_ih_l0, &cell.bias_ih},
                          {&rnn.bias_hh_l0, &cell.bias_hh}})
    set_values(*to, *from);
  Tensor x = randn({2, 5, 3}, gen);
  nn::SequenceOutput out = rnn.forward(x, {5, 2});
  Tensor h;
  for (int64_t t = 0; t < 5; ++t) {
    h = cell.forward(squeeze(narrow(x, 1, t, 1), 1), h);
    for (int64_t k = 0; k < 4; ++k) {
      CHECK(out.output.at({0, t, k}) == doctest::Approx(h.at({0, k})).epsilon(testing::tol));
      // sequence 1 ends after step 1: h_n is that step's state, later outputs are zeros
      if (t == 1)
        CHECK(out.h_n.at({0, 1, k}) == doctest::Approx(h.at({1, k})).epsilon(testing::tol));
      if (t >= 2) CHECK(out.output.at({1, t, k}) == 0);
    }
  }
  for (int64_t k = 0; k < 4; ++k)
    CHECK(out.h_n.at({0, 0, k}) == doctest::Approx(h.at({0, k})).epsilon(testing::tol));
}

TEST_CASE("layers/rnn [F0.5]: an RNN unrolled over 1,000 steps backpropagates") {
  // W_hh = W_xh = I and no bias make every feature its own chain,
  // h_t = tanh(h_{t-1} + x_t), so the gradient of h_999 with respect to x_0 is
  // prod_t (1 - h_t^2): a product over all 1,000 steps, computed by hand below.
  // Small inputs keep h small and the product far from 0 even in float.
  const int64_t T = 1000, H = 3;
  Generator gen(3);
  nn::RNN rnn(H, H);
  set_values(rnn.weight_ih_l0, tensor({{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}));
  set_values(rnn.weight_hh_l0, tensor({{1, 0, 0}, {0, 1, 0}, {0, 0, 1}}));
  set_values(rnn.bias_ih_l0, zeros({H}));
  set_values(rnn.bias_hh_l0, zeros({H}));
  Tensor x = randn({1, T, H}, gen) * real(0.001);
  x = x.detach();
  x.requires_grad_();
  nn::SequenceOutput out = rnn.forward(x);
  sum(out.h_n).backward();
  REQUIRE(x.grad().defined());
  for (int64_t k = 0; k < H; ++k) {
    double chain = 1;
    for (int64_t t = 0; t < T; ++t) chain *= 1 - std::pow(double(out.output.at({0, t, k})), 2);
    CHECK(chain > 0.1);  // the gradient did not vanish: the check below means something
    CHECK(x.grad().at({0, 0, k}) ==
          doctest::Approx(chain).epsilon(testing::is_double ? 1e-9 : 1e-3));
  }
  for (const Tensor& p : rnn.parameters()) {
    REQUIRE(p.grad().defined());
    for (real g : p.grad().to_vector()) CHECK(std::isfinite(g));
  }
}

TEST_CASE("layers/lstm: known weights give the hand-computed gates i, f, g, o, c and h") {
  nn::LSTMCell cell(1, 1);
  // PyTorch's layout of the 4H rows: input, forget, cell, output.
  set_values(cell.weight_ih, tensor({{0.5}, {-0.5}, {1.0}, {2.0}}));
  set_values(cell.weight_hh, tensor({{0.1}, {0.2}, {-0.3}, {0.4}}));
  set_values(cell.bias_ih, tensor({0.0, 1.0, 0.0, -1.0}));
  set_values(cell.bias_hh, tensor({0.2, 0.0, 0.1, 0.0}));
  const real x = 1, h0 = 0.5, c0 = -0.25;  // exact in float and double
  nn::RecurrentState next = cell.forward(tensor({{x}}), {tensor({{h0}}), tensor({{c0}})});
  const double i = sigmoid_d(0.5 * x + 0.1 * h0 + 0.0 + 0.2);
  const double f = sigmoid_d(-0.5 * x + 0.2 * h0 + 1.0 + 0.0);
  const double g = std::tanh(1.0 * x - 0.3 * h0 + 0.0 + 0.1);
  const double o = sigmoid_d(2.0 * x + 0.4 * h0 - 1.0 + 0.0);
  const double c = f * c0 + i * g;
  check_values(next.c, {c});
  check_values(next.h, {o * std::tanh(c)});
}

TEST_CASE("layers/lstm: LSTM is LSTMCell step by step; lengths freeze h and c") {
  Generator gen(4);
  nn::LSTM lstm(3, 2);
  nn::LSTMCell cell(3, 2);
  for (auto [from, to] : {std::pair{&lstm.weight_ih_l0, &cell.weight_ih},
                          {&lstm.weight_hh_l0, &cell.weight_hh},
                          {&lstm.bias_ih_l0, &cell.bias_ih},
                          {&lstm.bias_hh_l0, &cell.bias_hh}})
    set_values(*to, *from);
  Tensor x = randn({2, 4, 3}, gen);
  nn::SequenceOutput out = lstm.forward(x, {4, 3});
  nn::RecurrentState s;
  std::vector<double> h_at_3, c_at_3;
  for (int64_t t = 0; t < 4; ++t) {
    s = cell.forward(squeeze(narrow(x, 1, t, 1), 1), s);
    for (int64_t k = 0; k < 2; ++k)
      CHECK(out.output.at({0, t, k}) == doctest::Approx(s.h.at({0, k})).epsilon(testing::tol));
    if (t == 2) {
      h_at_3 = {s.h.at({1, 0}), s.h.at({1, 1})};
      c_at_3 = {s.c.at({1, 0}), s.c.at({1, 1})};
    }
  }
  check_shape(out.h_n, {1, 2, 2});  // (num_layers * num_directions, B, H)
  check_values(narrow(out.h_n, 1, 1, 1), h_at_3);
  check_values(narrow(out.c_n, 1, 1, 1), c_at_3);
  check_values(narrow(out.h_n, 1, 0, 1), {s.h.at({0, 0}), s.h.at({0, 1})});
  check_values(narrow(narrow(out.output, 0, 1, 1), 1, 3, 1), {0, 0});
}

TEST_CASE("layers/lstm: PyTorch's parameter names and shapes; weights load by name") {
  nn::LSTM lstm(3, 5);
  CHECK(names_of(lstm) ==
        std::vector<std::string>{"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"});
  check_shape(lstm.weight_ih_l0, {20, 3});
  check_shape(lstm.weight_hh_l0, {20, 5});
  check_shape(lstm.bias_ih_l0, {20});
  nn::LSTMCell cell(3, 5);
  CHECK(names_of(cell) == std::vector<std::string>{"weight_ih", "weight_hh", "bias_ih", "bias_hh"});
  nn::RNN rnn(3, 5);
  CHECK(names_of(rnn) ==
        std::vector<std::string>{"weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"});
  // Every weight ~ U(-1/sqrt(H), 1/sqrt(H)), as PyTorch initialises them.
  for (real w : lstm.weight_hh_l0.to_vector()) CHECK(std::abs(w) <= 1 / std::sqrt(5.0));
  const std::string path = "build/test_lstm_weights.safetensors";
  lstm.save(path);
  nn::LSTM other(3, 5);
  other.load(path);
  CHECK(other.weight_hh_l0.to_vector() == lstm.weight_hh_l0.to_vector());
  std::remove(path.c_str());
}

TEST_CASE("layers/rnn: errors name the layer and the shapes") {
  nn::RNN rnn(3, 4);
  check_error([&] { (void)rnn.forward(zeros({2, 5, 2})); }, {"RNN:", "(2,5,2)", "input_size = 3"});
  check_error(
      [&] {
        (void)rnn.forward(zeros({2, 5, 3}), {5});
      },
      {"RNN:", "1 lengths", "batch of 2"});
  check_error(
      [&] {
        (void)rnn.forward(zeros({2, 5, 3}), {5, 6});
      },
      {"RNN:", "length 6 of sequence 1", "1..5"});
  check_error(
      [&] {
        (void)rnn.forward(zeros({2, 5, 3}), {}, zeros({2, 3}));
      },
      {"RNN:", "initial state h0 (2,3)", "num_layers * num_directions = 1", "hidden_size = 4"});
  nn::RNNCell cell(3, 4);
  check_error([&] { (void)cell.forward(zeros({2, 4})); }, {"RNNCell:", "(2,4)", "input_size = 3"});
  check_error(
      [&] {
        (void)cell.forward(zeros({2, 3}), zeros({3, 4}));
      },
      {"RNNCell:", "state (3,4)", "batch = 2"});
  nn::SequenceAttention attention(3, 4);
  check_error(
      [&] {
        (void)attention.forward(zeros({2, 5, 4}));
      },
      {"SequenceAttention:", "(2,5,4)", "input_size = 3"});
  nn::LSTMCell lstm_cell(3, 4);
  check_error(
      [&] {
        (void)lstm_cell.forward(zeros({2, 3}), {zeros({2, 4}), zeros({1, 4})});
      },
      {"LSTMCell:", "c (1,4)", "batch = 2"});
  nn::LSTM lstm(3, 4);
  check_error([&] { (void)lstm.forward(zeros({2, 3})); }, {"LSTM:", "(2,3)", "(batch, time"});
  check_error([] { nn::LSTM bad(0, 4); }, {"LSTM:", "positive", "0"});
}

TEST_CASE("layers/sequence_attention [F0.5] [F0.6] [F0.7]: scores of RNN states, h_t + context") {
  manual_seed(5);
  Generator gen(5);
  nn::SequenceAttention layer(3, 4);
  Tensor x = randn({2, 5, 3}, gen);
  nn::SequenceAttentionOutput out = layer.forward(x, {5, 3});
  check_shape(out.output, {2, 5, 4});
  check_shape(out.weights, {2, 5});
  for (int64_t b = 0; b < 2; ++b) {
    const int64_t len = b == 0 ? 5 : 3;
    // [F0.6] e_i = W_e h_i + b_e and a_i = exp(e_i)/sum_j exp(e_j), by hand
    std::vector<double> e(len);
    double z = 0;
    for (int64_t i = 0; i < len; ++i) {
      e[i] = layer.linear->bias.at({0});
      for (int64_t k = 0; k < 4; ++k)
        e[i] += layer.linear->weight.at({0, k}) * out.states.at({b, i, k});
      z += std::exp(e[i]);
    }
    for (int64_t i = 0; i < 5; ++i) {
      const double a = i < len ? std::exp(e[i]) / z : 0.0;
      CHECK(out.weights.at({b, i}) == doctest::Approx(a).epsilon(testing::tol));
    }
    CHECK(out.weights.at({1, 4}) == 0);  // padding: exactly zero
    // [F0.7] h_t + sum_i a_i h_i, every valid t
    for (int64_t k = 0; k < 4; ++k) {
      double c = 0;
      for (int64_t i = 0; i < len; ++i) c += std::exp(e[i]) / z * out.states.at({b, i, k});
      CHECK(out.context.at({b, k}) == doctest::Approx(c).epsilon(testing::tol));
      for (int64_t t = 0; t < len; ++t)
        CHECK(out.output.at({b, t, k}) ==
              doctest::Approx(out.states.at({b, t, k}) + c).epsilon(testing::tol));
    }
  }
}

#ifdef AG_USE_DOUBLE
TEST_CASE("grad/rnn [F0.5]: finite differences for RNNCell and RNN (with padding)") {
  manual_seed(6);
  Generator gen(6);
  nn::RNNCell cell(3, 4);
  Tensor x = randn({2, 3}, gen), h = randn({2, 4}, gen);
  x.requires_grad_();
  h.requires_grad_();
  check_module_gradients(cell, [&] { return cell.forward(x, h); }, {x, h});
  nn::RNN rnn(3, 4);
  Tensor xs = randn({2, 4, 3}, gen);
  xs.requires_grad_();
  check_module_gradients(rnn,
                         [&] {
                           nn::SequenceOutput out = rnn.forward(xs, {4, 2});
                           return cat({reshape(out.output, {-1}), reshape(out.h_n, {-1})}, 0);
                         },
                         {xs});
}

TEST_CASE("grad/lstm: finite differences for LSTMCell and LSTM (with padding)") {
  manual_seed(7);
  Generator gen(7);
  nn::LSTMCell cell(3, 2);
  Tensor x = randn({2, 3}, gen), h = randn({2, 2}, gen), c = randn({2, 2}, gen);
  for (Tensor* t : {&x, &h, &c}) t->requires_grad_();
  check_module_gradients(cell,
                         [&] {
                           nn::RecurrentState s = cell.forward(x, {h, c});
                           return cat({reshape(s.h, {-1}), reshape(s.c, {-1})}, 0);
                         },
                         {x, h, c});
  nn::LSTM lstm(3, 2);
  Tensor xs = randn({2, 4, 3}, gen);
  xs.requires_grad_();
  check_module_gradients(
      lstm,
      [&] {
        nn::SequenceOutput out = lstm.forward(xs, {3, 4});
        return cat({reshape(out.output, {-1}), reshape(out.h_n, {-1}), reshape(out.c_n, {-1})}, 0);
      },
      {xs});
}

TEST_CASE("grad/sequence_attention [F0.6] [F0.7]: finite differences, with padding") {
  manual_seed(8);
  Generator gen(8);
  nn::SequenceAttention layer(2, 3);
  Tensor x = randn({2, 4, 2}, gen);
  x.requires_grad_();
  check_module_gradients(layer,
                         [&] {
                           nn::SequenceAttentionOutput out = layer.forward(x, {4, 3});
                           return cat({reshape(out.output, {-1}), reshape(out.weights, {-1})}, 0);
                         },
                         {x});
}
#endif
